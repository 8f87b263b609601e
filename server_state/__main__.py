from server_state._cli import main

raise SystemExit(main())
