from modelcatalog.cli.main import main

raise SystemExit(main())
