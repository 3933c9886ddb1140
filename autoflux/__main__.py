from autoflux.cli import main

main()
