//! Standard input and output as the runtime's own non-blocking streams, when they can be.
//!
//! Why: `tokio::io::stdin()`/`stdout()` do every read and write on the blocking thread pool, so
//! each message an editor sends or receives crosses threads twice more than it must. Editors
//! start a language server with anonymous pipes (Helix, most Rust and Python clients) or
//! socket pairs (libuv: VS Code, Neovim); both can be driven by the reactor directly, which
//! takes a thread hand-off off every request and answer (measured in `benches/inline.rs`).
//!
//! Anything else (a terminal, a regular file, an unknown platform) keeps Tokio's blocking
//! readers. Standard output is left to Tokio when it is the same pipe or socket as standard
//! error: making it non-blocking would make stderr non-blocking too, and a log line could then
//! fail with `EAGAIN`.
//!
//! Must never: change the mode of a descriptor it does not then own the reading or writing of.

use tokio::io::{AsyncRead, AsyncWrite};

/// The server's input: standard input.
pub type Input = Box<dyn AsyncRead + Send + Unpin>;
/// The server's output: standard output.
pub type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// Standard input and output for the transport. Must be called inside the runtime.
pub fn streams() -> (Input, Output) {
    (input(), output())
}

#[cfg(unix)]
fn input() -> Input {
    match unix::reactor_input() {
        Some(input) => input,
        None => Box::new(tokio::io::stdin()),
    }
}

#[cfg(unix)]
fn output() -> Output {
    match unix::reactor_output() {
        Some(output) => output,
        None => Box::new(tokio::io::stdout()),
    }
}

#[cfg(not(unix))]
fn input() -> Input {
    Box::new(tokio::io::stdin())
}

#[cfg(not(unix))]
fn output() -> Output {
    Box::new(tokio::io::stdout())
}

#[cfg(unix)]
mod unix {
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use tokio::net::UnixStream;
    use tokio::net::unix::pipe;

    use super::{Input, Output};

    /// What a standard descriptor is.
    enum Kind {
        Pipe,
        Socket,
        Other,
    }

    fn kind(fd: BorrowedFd<'_>) -> Option<(Kind, (u64, u64))> {
        let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
        let meta = file.metadata().ok()?;
        let file_type = meta.file_type();
        let kind = if file_type.is_fifo() {
            Kind::Pipe
        } else if file_type.is_socket() {
            Kind::Socket
        } else {
            Kind::Other
        };
        Some((kind, (meta.dev(), meta.ino())))
    }

    fn socket(fd: OwnedFd) -> Option<UnixStream> {
        let stream = std::os::unix::net::UnixStream::from(fd);
        // A socket of another family (TCP from inetd, say) fails here or in `from_std`; Tokio's
        // blocking reader then serves it as before.
        stream.local_addr().ok()?;
        stream.set_nonblocking(true).ok()?;
        UnixStream::from_std(stream).ok()
    }

    pub(super) fn reactor_input() -> Option<Input> {
        let stdin = std::io::stdin();
        let (kind, _) = kind(stdin.as_fd())?;
        let fd = stdin.as_fd().try_clone_to_owned().ok()?;
        match kind {
            Kind::Pipe => pipe::Receiver::from_owned_fd(fd)
                .ok()
                .map(|r| Box::new(r) as Input),
            Kind::Socket => socket(fd).map(|s| Box::new(s) as Input),
            Kind::Other => None,
        }
    }

    pub(super) fn reactor_output() -> Option<Output> {
        let stdout = std::io::stdout();
        let (kind, identity) = kind(stdout.as_fd())?;
        if let Some((_, stderr)) = kind_of_stderr()
            && stderr == identity
        {
            return None;
        }
        let fd = stdout.as_fd().try_clone_to_owned().ok()?;
        match kind {
            Kind::Pipe => pipe::Sender::from_owned_fd(fd)
                .ok()
                .map(|s| Box::new(s) as Output),
            Kind::Socket => socket(fd).map(|s| Box::new(s) as Output),
            Kind::Other => None,
        }
    }

    fn kind_of_stderr() -> Option<(Kind, (u64, u64))> {
        kind(std::io::stderr().as_fd())
    }
}
