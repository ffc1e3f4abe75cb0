from skr_cli.cli import main

main()
