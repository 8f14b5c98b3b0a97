"""TCP convergence layer version 4 (RFC 9174) and the lossy-link simulator."""
