"""Bundle Protocol version 7 codec (RFC 9171; ipn EIDs also per RFC 9758). Pure functions, no I/O."""
