//! `storyteller-lsp provider sign-in openrouter [--session NAME] [--no-browser]`: "Sign in with
//! OpenRouter" from a terminal, through the same [`crate::admin::oauth`] flow as the editor's
//! command. The address is printed (and opened in the system browser unless `--no-browser`); the
//! browser's return reaches the loopback listener, or the author pastes the code the browser
//! shows (remote machines, where the browser cannot reach this one's loopback).

use std::io::BufRead;

use tokio_util::sync::CancellationToken;

use super::{Failure, Place};
use crate::admin::oauth::{self, Opener, SignInRequest};
use crate::admin::requests;
use crate::messages;

pub struct SignInOptions {
    pub provider: String,
    pub session: Option<String>,
    pub no_browser: bool,
}

struct TerminalOpener {
    browser: bool,
}

impl Opener for TerminalOpener {
    async fn open(&self, url: String) {
        eprintln!("{}", messages::oauth::open_manually(&url));
        if self.browser {
            open_in_browser(&url);
        }
        // A code pasted on stdin completes the flow (read on a thread of its own: stdin blocks).
        std::thread::spawn(|| {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { return };
                if !line.trim().is_empty() {
                    if let Err(e) = oauth::complete_with_code(&line) {
                        eprintln!("{e}");
                    }
                    return;
                }
            }
        });
    }
}

/// Best effort: the address is printed anyway.
fn open_in_browser(url: &str) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

pub async fn sign_in(place: &Place, o: SignInOptions) -> Result<(), Failure> {
    let kind = requests::parse_kind("provider", &o.provider)?;
    let session = o
        .session
        .map(|s| requests::parse_session_name("session", &s))
        .transpose()?;
    let (app, project) = place.open().await?;
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let opener = TerminalOpener {
        browser: !o.no_browser,
    };
    let signed_in = oauth::sign_in(
        &app,
        project,
        SignInRequest { kind, session },
        &opener,
        &cancel,
    )
    .await?;
    println!(
        "{}",
        messages::oauth::signed_in(
            signed_in.session.name.as_str(),
            &signed_in.provider.display_name
        )
    );
    Ok(())
}
