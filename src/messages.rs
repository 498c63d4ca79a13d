//! Every user-facing text of StoryTeller LSP, in one place (DESIGN.md §7).
//!
//! Texts here are part of the contract: editors, tests and documentation quote them verbatim.
//! Functions take already-safe display values (provider display names, model ids, counts) —
//! never a key and never manuscript text.

/// The action buttons that come with some messages.
pub mod actions {
    pub const CONFIGURE_AI_PROVIDER: &str = "Configure AI Provider";
    pub const MAYBE_LATER: &str = "Maybe Later";
    pub const OPEN_SETTINGS: &str = "Open Settings";
    pub const UPDATE_KEY: &str = "Update Key";
    pub const RETRY: &str = "Retry";
    pub const SWITCH_PROVIDER: &str = "Switch Provider";
    pub const CONFIGURE_PROVIDERS: &str = "Configure Providers";
    pub const REMOVE: &str = "Remove";
    pub const CANCEL: &str = "Cancel";

    /// "Make {backup} primary".
    pub fn make_primary(backup: &str) -> String {
        format!("Make {backup} primary")
    }
}

pub const NOT_CONFIGURED: &str = "AI providers not configured. Would you like to set one up now?";
pub const EMPTY_PROVIDER_LIST: &str = "No AI providers configured. Add one to enable AI features.";
pub const PROVIDER_ADDED: &str = "Provider added successfully";
pub const ALL_FAILED: &str = "All configured AI providers are unavailable. Please check your internet connection or provider status.";
pub const OFFLINE: &str = "AI features require an internet connection. You can continue writing and use AI features when you're back online.";
pub const RATE_LIMIT_PROGRESS: &str = "Rate limit reached, retrying...";
pub const TESTING_CONNECTION: &str = "Testing connection...";

pub fn test_ok(model: &str) -> String {
    format!("Connection successful! Model: {model}")
}

pub fn invalid_key(provider: &str) -> String {
    format!("The API key for {provider} is invalid. Please check your key in Settings.")
}

pub fn key_revoked(provider: &str) -> String {
    format!("The API key for {provider} is no longer valid. Please update your credentials.")
}

pub fn network(provider: &str) -> String {
    format!("Cannot connect to {provider}. Please check your internet connection.")
}

pub fn unavailable(provider: &str) -> String {
    format!("{provider} is currently unavailable. Trying backup provider...")
}

pub fn rate_limited(provider: &str, seconds: u64) -> String {
    format!("API rate limit reached for {provider}. Retrying in {seconds} seconds.")
}

pub fn quota_exhausted(provider: &str) -> String {
    format!(
        "Your {provider} API quota has been exhausted. Please upgrade your plan or switch to another provider."
    )
}

pub fn failed_over(backup: &str) -> String {
    format!("Primary provider unavailable. Switched to {backup}.")
}

pub fn recovered(name: &str) -> String {
    format!("Primary provider {name} is available again.")
}

pub fn confirm_remove(provider: &str) -> String {
    format!(
        "Remove {provider}? This will delete the stored API key and you'll need to re-enter it if you want to use this provider again."
    )
}

/// The once-per-process warning shown when keys go to the encrypted file instead of the keychain.
pub fn fallback_store_warning(path: &std::path::Path, reason: &str) -> String {
    format!(
        "No usable OS keychain ({reason}); API keys are stored in the encrypted file {}. \
         It is weaker than the keychain: its encryption key is derived from this machine's id \
         (or STORYTELLER_CREDENTIALS_KEY), so anyone who can read both the file and the machine id \
         can decrypt it. Install and unlock a keychain (for example gnome-keyring) to keep keys there instead.",
        path.display()
    )
}

/// A model that the provider does not know; we fell back to its default.
pub fn model_fallback(provider: &str, missing: &str, default_model: &str) -> String {
    format!(
        "{provider} does not offer the model {missing}; using its default model {default_model} instead."
    )
}

/// For clients without `showMessageRequest`: the terminal command that does what a button would.
pub fn cli_hint(command: &str) -> String {
    format!("Run `{command}` in a terminal to manage AI providers.")
}

/// The document changed under a generated edit and the edit could not be re-anchored.
pub const EDIT_CONFLICT: &str = "The text changed while the suggestion was being written, so it was not applied. Run the action again.";

/// An `executeCommand` for a command this build does not run yet.
pub fn command_unavailable(command: &str) -> String {
    format!("{command} is not available in this version of StoryTeller.")
}

/// The server's copy of a document no longer matches the editor's (a change was refused).
pub fn document_out_of_sync(file: &str) -> String {
    format!(
        "StoryTeller lost track of the changes to {file}. Close and reopen it to get suggestions for it again."
    )
}

/// The author-facing text for a provider failure of `kind` (DESIGN.md §7 where the table has a
/// row; the rest are ours). `provider` is the display name; `retry_after` is the wait before the
/// retry, shown rounded up to whole seconds (at least 1).
pub fn for_provider_error(
    kind: crate::providers::ErrorKind,
    provider: &str,
    retry_after: Option<std::time::Duration>,
) -> String {
    use crate::providers::ErrorKind;
    match kind {
        ErrorKind::InvalidKey => invalid_key(provider),
        ErrorKind::QuotaExhausted => quota_exhausted(provider),
        ErrorKind::RateLimited => {
            let wait = retry_after.unwrap_or_default();
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            rate_limited(provider, secs.max(1))
        }
        ErrorKind::Unavailable => unavailable(provider),
        ErrorKind::Network => network(provider),
        ErrorKind::Timeout => format!("{provider} took too long to answer. Please try again."),
        ErrorKind::ModelNotFound => format!(
            "{provider} does not offer the configured model. Please choose another model in Settings."
        ),
        ErrorKind::BadRequest => format!(
            "{provider} could not process this request. Try a shorter selection or another provider."
        ),
        ErrorKind::Cancelled => format!("The request to {provider} was cancelled."),
        ErrorKind::Protocol => {
            format!("{provider} sent an answer StoryTeller could not read. Please try again.")
        }
    }
}

#[cfg(test)]
mod provider_error_tests {
    use super::*;
    use crate::providers::ErrorKind;
    use std::time::Duration;

    #[test]
    fn provider_errors_use_the_design_texts() {
        let cases = [
            (ErrorKind::InvalidKey, None, invalid_key("OpenAI")),
            (ErrorKind::QuotaExhausted, None, quota_exhausted("OpenAI")),
            (ErrorKind::Network, None, network("OpenAI")),
            (ErrorKind::Unavailable, None, unavailable("OpenAI")),
            (
                ErrorKind::RateLimited,
                Some(Duration::from_millis(1500)),
                "API rate limit reached for OpenAI. Retrying in 2 seconds.".to_string(),
            ),
            (
                ErrorKind::RateLimited,
                None,
                "API rate limit reached for OpenAI. Retrying in 1 seconds.".to_string(),
            ),
        ];
        for (kind, retry, want) in cases {
            assert_eq!(for_provider_error(kind, "OpenAI", retry), want, "{kind}");
        }
    }
}

/// What an author reads when the encrypted credentials file cannot be written.
pub mod credentials {
    use std::path::Path;

    pub fn no_space(path: &Path) -> String {
        format!(
            "There is not enough space to save the API key in {} (the disk is full, or a quota \
             or file-size limit was reached). Nothing was changed: the keys saved before are \
             still there. Free some space and try again.",
            path.display()
        )
    }
}

/// What an author reads when the database cannot be used (the `doctor` report, server start-up).
pub mod database {
    use std::path::Path;

    fn named(path: &Path) -> String {
        if path.as_os_str().is_empty() {
            "The StoryTeller database".to_string()
        } else {
            format!("The database {}", path.display())
        }
    }

    pub fn locked(path: &Path) -> String {
        format!(
            "{} is locked by another process (another storyteller-lsp, or a tool that has it open). \
             Close that process and try again.",
            named(path)
        )
    }

    pub fn corrupt(path: &Path, detail: &str) -> String {
        format!(
            "The file {} is not a StoryTeller database or is damaged ({detail}); it was left untouched. \
             Move it aside or restore a backup, then start again to create a fresh database.",
            path.display()
        )
    }

    pub fn newer_schema(path: &Path, found: u32, supported: u32) -> String {
        format!(
            "{} was written by a newer StoryTeller LSP (schema V{found}; this version knows up to \
             V{supported}). Upgrade storyteller-lsp, or set `dataDir` to another directory.",
            named(path)
        )
    }
}

/// The services (database, prompts) are not open yet when a command arrives.
pub const SERVICES_NOT_STARTED: &str = "StoryTeller is still starting; try again in a moment.";

/// The background start-up could not open the database or the prompts.
pub fn services_unavailable(reason: &str) -> String {
    format!("StoryTeller could not start its AI features: {reason}")
}

/// Titles of the writing actions in the editor's code action menu.
pub mod action_titles {
    pub const CONTINUE_SCENE: &str = "Continue scene";
    pub const EXPAND_WORLDBUILDING: &str = "Expand worldbuilding";
    pub const REWRITE: &str = "Rewrite selection";
    pub const SUGGEST_DIALOGUE: &str = "Suggest dialogue";
    pub const DESCRIBE_CHARACTER: &str = "Describe character";
    /// Continue scene with the author's direction, asked for by the editor.
    pub const CONTINUE_SCENE_WITH: &str = "Continue scene with…";

    /// "Rewrite selection: vivid".
    pub fn rewrite(tone: &str) -> String {
        format!("{REWRITE}: {tone}")
    }
}

/// Progress texts of a running writing action (`$/progress`).
pub mod progress {
    /// While the request waits for its first words.
    pub fn asking(provider: &str) -> String {
        format!("Asking {provider}…")
    }

    pub const WAITING: &str = "Waiting for an AI provider…";

    /// While the text streams in.
    pub fn words_written(words: usize) -> String {
        if words == 1 {
            "1 word written".to_string()
        } else {
            format!("{words} words written")
        }
    }

    pub const APPLYING: &str = "Inserting the text…";
    pub const DONE: &str = "Done";
    pub const CANCELLED: &str = "Cancelled";
    pub const FAILED: &str = "Failed";
}

/// "Switch Provider": the question whose buttons are the other active providers.
pub const CHOOSE_PROVIDER: &str = "Switch to which AI provider?";

/// `euOnly` is on and no active provider keeps data in the EU.
pub const NO_EU_PROVIDER: &str = "EU-only mode is on, but none of your active AI providers keeps data in the EU. Add Scaleway, or mark a custom endpoint as EU-resident.";

/// A provider answered, but nothing of the answer could go into the manuscript.
pub const NOTHING_GENERATED: &str =
    "The AI provider returned no usable text. Run the action again.";

/// A provider stopped answering part-way through.
pub fn interrupted(provider: &str) -> String {
    format!(
        "{provider} stopped answering part-way through, so nothing was changed. Run the action again."
    )
}

/// The editor cannot apply edits (`workspace/applyEdit`); the text is returned instead.
pub const CANNOT_APPLY_EDIT: &str =
    "This editor does not let StoryTeller edit the document; the generated text was not inserted.";

/// The new primary after "Make {backup} primary" or "Switch Provider".
pub fn now_primary(provider: &str) -> String {
    format!("{provider} is now your primary AI provider.")
}

/// The CLI commands named for clients without message buttons or the settings page.
pub mod cli {
    pub const ADD_PROVIDER: &str = "storyteller-lsp provider add";
    pub const UPDATE_KEY: &str = "storyteller-lsp provider update";
    pub const LIST_PROVIDERS: &str = "storyteller-lsp provider list";

    pub fn set_primary(id: i64) -> String {
        format!("storyteller-lsp provider set-primary {id}")
    }
}

/// Making a provider primary (a button) failed.
pub fn provider_change_failed(reason: &str) -> String {
    format!("StoryTeller could not change the primary AI provider: {reason}")
}

/// A `contextFiles` glob could not be used; story notes are not read until it is fixed.
pub fn story_notes_unavailable(reason: &str) -> String {
    format!("Story notes are not used: {reason}")
}

/// The transcript of `storyteller-lsp demo`: what an author would see, narrated.
pub mod demo {
    pub const INTRO: &str = "StoryTeller demo: a real language-server session, driven here the way an editor drives it.\nEverything runs on this machine: a simulated AI provider on 127.0.0.1, a throwaway workspace and database, no keys, no network.\n(The simulated provider writes stock sentences around the names it sees; a real model follows the prompts.)";

    pub fn workspace(notes: usize) -> String {
        format!("Workspace: a novel with {notes} story notes (characters/, notes/, STORY.md)")
    }

    pub fn providers(primary: &str, backup: &str) -> String {
        format!("AI providers: {primary} (primary) and {backup} (backup), both simulated")
    }

    pub fn opening(file: &str, words: usize) -> String {
        format!("Opening {file} ({words} words)")
    }

    pub fn status(state: &str, provider: &str) -> String {
        if provider.is_empty() {
            format!("Status bar: StoryTeller {state}")
        } else {
            format!("Status bar: StoryTeller {state}, {provider}")
        }
    }

    pub const STEP_INLINE: &str =
        "1. The author pauses at the end of the chapter; ghost text appears:";
    pub const ACCEPTED: &str =
        "   The author accepts it (Tab); the acceptance counts for the prompt's success rate.";
    pub const STEP_CONTINUE: &str = "2. Code action \u{201c}Continue scene\u{201d} at the cursor:";
    pub fn step_rewrite(title: &str) -> String {
        format!("3. Code action \u{201c}{title}\u{201d} on a selected sentence:")
    }
    pub fn step_failure(primary: &str) -> String {
        format!(
            "4. {primary} goes down (the simulator answers 503). \u{201c}Continue scene\u{201d} again:"
        )
    }
    pub fn step_recovery(primary: &str, secs: u64) -> String {
        format!("5. {primary} is back; the health check (every {secs} s) notices:")
    }
    pub const STEP_RESULT: &str = "The end of the chapter now reads:";
    pub const NO_SUGGESTION: &str = "(no suggestion)";

    pub fn progress(line: &str) -> String {
        format!("   progress: {line}")
    }

    pub fn inserted(provider: &str, text: &str) -> String {
        format!("   inserted by {provider}: \u{201c}{text}\u{201d}")
    }

    pub fn before_after(before: &str, after: &str) -> String {
        format!("   before: \u{201c}{before}\u{201d}\n   after:  \u{201c}{after}\u{201d}")
    }

    pub fn message(kind: &str, text: &str, buttons: &[String]) -> String {
        let buttons: String = buttons.iter().map(|b| format!("  [{b}]")).collect();
        format!("   {kind} {text}{buttons}")
    }

    pub fn not_applied(reason: &str) -> String {
        format!("   (not applied: {reason})")
    }

    pub const FINISHED: &str = "Demo finished; the temporary workspace and database were removed.";
}

/// The reasons of the executeCommand argument decoder (`crate::args`): they say what was expected
/// and which JSON type arrived, never the value.
pub mod args {
    /// A member the command does not take.
    pub fn unknown_field(allowed: &[&str]) -> String {
        if allowed.is_empty() {
            "unknown field; this command takes no arguments".to_string()
        } else {
            format!("unknown field; expected one of {}", allowed.join(", "))
        }
    }

    pub const REQUIRED: &str = "is required";

    /// A value of the wrong JSON type: `expected` ("a string"), `got` ("a number").
    pub fn wrong_type(expected: &str, got: &str) -> String {
        format!("expected {expected}, got {got}")
    }

    pub const NOT_AN_INTEGER_ID: &str = "expected an integer id";

    /// A structured value (a URI, a range, a number in range) that did not decode.
    pub fn wrong_shape(got: &str) -> String {
        format!("wrong type or shape (got {got})")
    }

    /// A value that could not be read at all.
    pub fn unreadable(got: &str) -> String {
        format!("could not be read (got {got})")
    }
}

/// Provider and session management (executeCommand and `storyteller-lsp provider …`).
pub mod admin {
    /// One provider per kind per project.
    pub fn duplicate_provider(provider: &str) -> String {
        format!(
            "{provider} is already configured for this project. Change it (update) or remove it first."
        )
    }

    pub fn duplicate_session(name: &str, provider: &str) -> String {
        format!("A session named {name} already exists for {provider}.")
    }

    /// A named session past its `expiresAt`.
    pub fn session_expired(name: &str, provider: &str) -> String {
        format!(
            "The {provider} session {name} has expired, so its key is no longer used. Add a new session (or sign in again) and point the provider at it."
        )
    }

    /// A provider needs a key and none was given or found.
    pub fn no_key(provider: &str, variable: Option<&str>) -> String {
        match variable {
            Some(variable) => {
                format!(
                    "No API key for {provider}: enter one, or set {variable} in the environment."
                )
            }
            None => format!("No API key for {provider}: enter one."),
        }
    }

    /// `remove` from a client that cannot show buttons, without `confirmed: true`.
    pub fn confirmation_required(provider: &str, id: i64) -> String {
        format!(
            "Removing {provider} deletes its stored API key, and this editor cannot ask for confirmation. \
             Run the command again with `confirmed: true`, or run `storyteller-lsp provider remove {id}` in a terminal."
        )
    }

    /// After removing the primary: which provider is primary now (buttons: the remaining ones).
    pub fn choose_primary(removed: &str) -> String {
        format!("{removed} was the primary provider. Which provider should be primary now?")
    }

    /// The next provider became primary without the author choosing.
    pub fn primary_chosen(name: &str) -> String {
        format!(
            "{name} is now the primary provider. To choose another, use storyteller.providers.setPrimary \
             or run `storyteller-lsp provider set-primary` in a terminal."
        )
    }

    pub const BUSY: &str =
        "Another StoryTeller process is changing AI providers right now. Try again in a moment.";

    // What start-up says after finding an operation that a crash interrupted.

    pub fn interrupted_add(provider: &str) -> String {
        format!(
            "Adding {provider} was interrupted before it finished, so nothing was saved. Please add it again."
        )
    }

    pub fn interrupted_rotation(provider: &str) -> String {
        format!(
            "Changing {provider} was interrupted: its API key may already be the new one, but its other \
             changes were not saved. Please check its settings and test it."
        )
    }

    pub fn interrupted_remove(provider: &str) -> String {
        format!("Removing {provider} was interrupted; the removal has now been completed.")
    }

    pub fn interrupted_session_add(name: &str) -> String {
        format!(
            "Adding the session {name} was interrupted before it finished, so nothing was saved. Please add it again."
        )
    }

    pub fn key_missing(provider: &str) -> String {
        format!(
            "The API key for {provider} is missing from the credential store. Please enter it again."
        )
    }
}

/// Story notes: what `storyteller.notes.list` and `storyteller-lsp notes` say about a note.
pub mod notes {
    pub fn front_matter_unclosed() -> String {
        "the front matter opened by the first `---` line is never closed with a `---` line; the note is read as plain text".to_string()
    }

    pub fn front_matter_invalid(line: usize) -> String {
        format!(
            "the front matter is not valid YAML (line {line}); its settings are ignored and the rest is read as plain text"
        )
    }

    pub fn include_unknown(value: &str) -> String {
        let value: String = value.chars().take(40).collect();
        format!("include: {value:?} is not one of always, mentioned, never; `mentioned` is used")
    }

    /// Why a note would (not) be part of a prompt at a position.
    pub const ALWAYS: &str = "always: `include: always` puts it in every prompt";
    pub const NEVER: &str = "never: `include: never` keeps it out of every prompt";
    pub const NOT_MENTIONED: &str = "not mentioned: none of its names is near the cursor";
    pub const STORY_BIBLE: &str = "story bible: STORY.md is part of every prompt on its own";

    pub fn mentioned(matched: &str, distance: usize, before: bool) -> String {
        let side = if before { "before" } else { "after" };
        format!("mentioned: {matched:?} {distance} characters {side} the cursor")
    }

    /// The log line for a note whose front matter is broken (names the file, never its text).
    pub fn log_problem(path: &str) -> String {
        format!(
            "story note {path}: its front matter could not be read; it is indexed as plain text"
        )
    }

    pub fn no_roots() -> String {
        "No story notes are indexed: open a workspace folder (or pass --workspace DIR).".to_string()
    }

    pub fn bad_position(reason: &str) -> String {
        format!("--at: {reason}; expected FILE:LINE (or FILE:LINE:COLUMN), lines counted from 1")
    }
}

/// What `storyteller.prompts.list` and `storyteller-lsp prompts list` say about a template's
/// statistics (`prompts::stats`).
pub mod prompt_stats {
    pub fn too_few_uses(minimum: u64) -> String {
        format!("fewer than {minimum} uses per version: not yet meaningful")
    }

    pub const ENOUGH_USES: &str = "enough uses for its rate to mean something";
    pub const VERSIONS_DIFFER: &str = "the versions' rates differ (95% confidence)";
    pub const NO_DIFFERENCE_YET: &str =
        "no difference between the versions at 95% confidence yet: keep collecting";
}

/// Provider keys taken from the environment, and models chosen from a listing (issue 15).
pub mod keys {
    /// `keySource: env` (or `provider add KIND --no-key`) while the kind's variable is unset.
    pub fn system_key_not_set(provider: &str, variable: &str) -> String {
        format!(
            "{variable} is not set in the environment of the StoryTeller server: set it (and \
             restart the editor) to use the system key for {provider}, or give an API key."
        )
    }

    /// `keySource: env` for a kind that has no system key variable (custom).
    pub fn no_system_key(provider: &str) -> String {
        format!(
            "{provider} has no system key variable; give an API key, or none for a custom endpoint."
        )
    }

    /// A new key for a provider that uses the system key.
    pub fn rotate_system_key(provider: &str, variable: &str) -> String {
        format!(
            "{provider} uses the system key from {variable}. To change it, set {variable} to the new \
             key and restart the editor; to give {provider} a key of its own, remove it and add it \
             again with the key."
        )
    }

    /// A custom endpoint added or tested without a model, whose listing offers none.
    pub fn no_models_listed(provider: &str) -> String {
        format!("{provider} lists no models: give the model to use.")
    }
}

/// What `storyteller-lsp prompts set-active` prints: one line per version of the template.
pub fn prompt_version_line(name: &str, version: u32, active: bool, weight: f64) -> String {
    if active {
        format!("{name} v{version}: active, weight {weight}")
    } else {
        format!("{name} v{version}: inactive")
    }
}

/// Told once, as information, when the `credentialStore` setting chose the encrypted file (the
/// author's choice, not a fallback: [`fallback_store_warning`] is for that).
pub fn file_store_chosen(path: &std::path::Path) -> String {
    format!(
        "Your credentialStore setting is \"file\", so API keys are stored in the encrypted file {} \
         rather than the OS keychain. Its encryption key is derived from this machine's id \
         (or STORYTELLER_CREDENTIALS_KEY), which makes it weaker than a keychain.",
        path.display()
    )
}

/// The link to a provider's key page on the settings page: "Get your OpenAI API key". A trailing
/// qualifier of the display name ("Scaleway (EU)") is left out.
pub fn key_help_link(display_name: &str) -> String {
    let name = match display_name.rsplit_once(" (") {
        Some((name, rest)) if rest.ends_with(')') => name,
        _ => display_name,
    };
    format!("Get your {name} API key")
}

/// "Sign in with OpenRouter" (`oauth`, `admin::oauth`, `storyteller.providers.signIn`,
/// `storyteller-lsp provider sign-in`). Never the code, the verifier or the key.
pub mod oauth {
    pub const TIMED_OUT: &str = "Sign-in with OpenRouter timed out: the browser did not come back within 5 minutes. Try again, or paste the code shown in the browser.";
    pub const CANCELLED: &str = "Sign-in with OpenRouter was cancelled.";
    pub fn denied(error: &str) -> String {
        if error.is_empty() {
            "OpenRouter did not grant access, so nothing was saved.".to_string()
        } else {
            format!("OpenRouter did not grant access ({error}), so nothing was saved.")
        }
    }
    pub fn listener(e: &std::io::Error) -> String {
        format!(
            "Could not listen on 127.0.0.1 for OpenRouter's answer ({e}). Paste the code instead."
        )
    }
    pub fn exchange_refused(status: u16) -> String {
        format!(
            "OpenRouter refused the sign-in code (HTTP {status}): it is wrong, expired or already used. Sign in again."
        )
    }
    pub const EXCHANGE_UNREACHABLE: &str =
        "Could not reach OpenRouter to finish signing in. Check your connection and sign in again.";
    pub const EXCHANGE_INVALID: &str =
        "OpenRouter's answer held no key, so nothing was saved. Sign in again.";
    pub const NO_PENDING: &str =
        "No sign-in is waiting for a code. Start \"Sign in with OpenRouter\" first.";
    pub const ALREADY_PENDING: &str =
        "A sign-in with OpenRouter is already waiting for the browser. Finish or cancel it first.";
    pub const OPEN_BROWSER: &str = "Sign in with OpenRouter in your browser.";
    pub fn open_manually(url: &str) -> String {
        format!(
            "Open this address in a browser to sign in with OpenRouter:\n{url}\nWaiting for the browser… (or paste the code it shows and press Enter)"
        )
    }
    pub fn signed_in(session: &str, provider: &str) -> String {
        format!(
            "Signed in with OpenRouter: the key is saved as session {session}, used by {provider}."
        )
    }
    pub const PROGRESS_TITLE: &str = "Signing in with OpenRouter";
    pub const PROGRESS_WAITING: &str = "Waiting for the browser…";
    pub const PAGE_SIGNED_IN_TITLE: &str = "Signed in to StoryTeller";
    pub const PAGE_SIGNED_IN: &str = "StoryTeller received your OpenRouter sign-in. You can close this tab and return to your editor.";
    pub const PAGE_DENIED_TITLE: &str = "Sign-in not completed";
    pub const PAGE_DENIED: &str =
        "OpenRouter did not grant access. You can close this tab and try again from your editor.";
    pub const PAGE_NOT_FOUND: &str = "Not found";
    pub const PAGE_NO_CODE: &str = "No sign-in code in this address";
    pub fn unsupported(provider: &str) -> String {
        format!("Sign-in in a browser is available for openrouter only, not {provider}.")
    }
}

/// Residency and transport (issue 15): plain HTTP only to this computer, and the question asked
/// once per project before manuscript text leaves the EU.
pub mod residency {
    /// Why an endpoint is refused (the reason of an `endpoint` argument error, and the text of a
    /// request refused for a stored row).
    pub fn insecure_http_refused(provider: &str, host: &str) -> String {
        format!(
            "{provider} uses plain http:// to {host}: the API key and your text would travel unencrypted. \
             Use https://, or an endpoint on this computer (localhost, 127.0.0.1, ::1). To accept the risk, \
             set the provider option allowInsecureHttp: true."
        )
    }

    /// The warning, once per provider, when `allowInsecureHttp` lets plain HTTP go to another host.
    pub fn insecure_http_allowed(provider: &str, host: &str) -> String {
        format!(
            "{provider} sends your API key and text unencrypted to {host} (plain http://, allowed by \
             allowInsecureHttp). Anyone on the network path can read them."
        )
    }

    /// The question before text leaves the EU, and its answers.
    pub fn consent_question(provider: &str) -> String {
        format!("Send to {provider} (outside the EU)?")
    }
    /// The question for an editor that shows no buttons (Helix): the terminal command answers it.
    pub fn consent_question_without_buttons(provider: &str) -> String {
        format!(
            "Send to {provider} (outside the EU)? Until you answer, your text stays in the EU. \
             Answer from a terminal in the workspace folder: `storyteller-lsp residency allow \
             --project .` or `storyteller-lsp residency keep-eu-only --project .`"
        )
    }

    /// `storyteller-lsp residency`: the project's answer.
    pub fn consent_line(project: &str, consent_text: &str) -> String {
        format!("{project}: {consent_text}")
    }
    pub const ALLOW: &str = "Allow";
    pub const KEEP_EU_ONLY: &str = "Keep EU only";

    /// The project's answer, as the status text says it.
    pub const CONSENT_ALLOWED: &str = "text may leave the EU when failing over (allowed)";
    pub const CONSENT_EU_ONLY: &str = "text stays in the EU (Keep EU only)";
    pub const CONSENT_UNANSWERED: &str = "not asked yet: text stays in the EU until you allow it";
}

/// A connection test that was rate limited: no retry is made, so the text says when to try again
/// (the generating text, "Retrying in N seconds", would promise a retry that never comes).
pub fn test_rate_limited(provider: &str, seconds: u64) -> String {
    format!("API rate limit reached for {provider}. Try the test again in {seconds} seconds.")
}

/// A connection test (or a model listing) failed: no backup is tried and nothing is retried, so
/// the texts that promise either ("Trying backup provider...", "Retrying in N seconds") are
/// replaced by what is true; every other kind reads as while generating.
pub fn for_connection_test(
    kind: crate::providers::ErrorKind,
    provider: &str,
    retry_after: Option<std::time::Duration>,
) -> String {
    use crate::providers::ErrorKind;
    match kind {
        ErrorKind::Unavailable => {
            format!("{provider} is currently unavailable. Please try again later.")
        }
        ErrorKind::RateLimited => {
            let wait = retry_after.unwrap_or_default();
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            test_rate_limited(provider, secs.max(1))
        }
        other => for_provider_error(other, provider, retry_after),
    }
}

#[cfg(test)]
mod connection_test_texts {
    use super::*;
    use crate::providers::ErrorKind;
    use std::time::Duration;

    #[test]
    fn a_test_promises_no_backup_and_no_retry() {
        let unavailable = for_connection_test(ErrorKind::Unavailable, "OpenAI", None);
        assert!(!unavailable.contains("backup"), "{unavailable}");
        let limited = for_connection_test(
            ErrorKind::RateLimited,
            "OpenAI",
            Some(Duration::from_millis(6200)),
        );
        assert_eq!(
            limited,
            "API rate limit reached for OpenAI. Try the test again in 7 seconds."
        );
        assert_eq!(
            for_connection_test(ErrorKind::InvalidKey, "OpenAI", None),
            invalid_key("OpenAI")
        );
    }
}
