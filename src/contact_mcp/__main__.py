"""`python -m contact_mcp`: the same command line as the `contact-mcp` script."""

from contact_mcp.cli import main

if __name__ == "__main__":
    main()
