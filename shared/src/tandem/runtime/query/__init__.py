"""The query side of the runtime: versioned reads, search, caches and live pushes, for every
read model of the loaded apps."""
