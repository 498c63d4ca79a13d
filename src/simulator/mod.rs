//! A loopback HTTP server that speaks every provider's wire format and injects faults, for tests and `demo`.
