//! The protocol edge: the only module that knows LSP and JSON-RPC. Handlers decode, call the domain, encode.
