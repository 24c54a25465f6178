"""The platform's building blocks, one ComponentResource per file, each with typed args."""
