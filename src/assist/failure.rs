//! What to tell the author when a code action produced nothing, decided without LSP: the
//! `reason` of the command's result and the advice (a message, a question with choices, the EU
//! question, or nothing). `lsp::assist_commands` only carries the advice out.

use crate::messages;
use crate::providers::ErrorKind;
use crate::routing::{ProviderRef, RouteError};

use super::AssistError;

/// How a message is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

/// A choice offered with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Run the same action again.
    Retry,
    /// Open the provider settings.
    ConfigureProviders,
}

/// What the author is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Advice {
    /// Nothing: the author cancelled it (or typed on, superseding it).
    Silent,
    /// No provider is configured: the set-up offer (once per session), else its text.
    NotConfigured,
    Tell {
        severity: Severity,
        text: String,
    },
    Ask {
        severity: Severity,
        text: String,
        offers: Vec<Offer>,
    },
    /// "Send to {provider} (outside the EU)?", with the action run again on Allow.
    AskEuConsent {
        provider: ProviderRef,
    },
}

/// The `reason` of the result and the advice.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureAdvice {
    pub reason: &'static str,
    pub advice: Advice,
}

/// What the router says of the project right now, for the texts that name the active provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoutingNow<'a> {
    /// The provider requests go to now (empty when none).
    pub active_name: &'a str,
    /// How many providers are active.
    pub active_count: usize,
}

/// Decides what to tell the author about `error`.
pub fn advise(error: &AssistError, now: RoutingNow<'_>) -> FailureAdvice {
    let (reason, advice) = match error {
        e if e.is_cancelled() => ("cancelled", Advice::Silent),
        AssistError::Route(RouteError::NotConfigured) => ("notConfigured", Advice::NotConfigured),
        AssistError::Route(RouteError::NoEuProvider) => (
            "notConfigured",
            tell(Severity::Warning, messages::NO_EU_PROVIDER),
        ),
        AssistError::Route(RouteError::Offline) if now.active_count == 1 => (
            "offline",
            Advice::Ask {
                severity: Severity::Error,
                text: messages::network(now.active_name),
                offers: vec![Offer::Retry],
            },
        ),
        AssistError::Route(RouteError::Offline) => {
            ("offline", tell(Severity::Error, messages::OFFLINE))
        }
        AssistError::Route(RouteError::AllFailed { .. }) => (
            "allFailed",
            Advice::Ask {
                severity: Severity::Error,
                text: messages::ALL_FAILED.to_string(),
                offers: vec![Offer::Retry, Offer::ConfigureProviders],
            },
        ),
        AssistError::Route(RouteError::Fatal { provider, error }) => (
            "providerError",
            tell(
                Severity::Error,
                messages::for_provider_error(
                    error.kind(),
                    &provider.display_name,
                    error.retry_after(),
                ),
            ),
        ),
        AssistError::Route(RouteError::ConsentNeeded { provider, .. }) => (
            "consentNeeded",
            Advice::AskEuConsent {
                provider: provider.clone(),
            },
        ),
        AssistError::Route(RouteError::RateLimited { retry_in }) => (
            "rateLimited",
            tell(
                Severity::Warning,
                messages::for_provider_error(
                    ErrorKind::RateLimited,
                    now.active_name,
                    Some(*retry_in),
                ),
            ),
        ),
        AssistError::Interrupted { provider, .. } => (
            "providerError",
            Advice::Ask {
                severity: Severity::Error,
                text: messages::interrupted(&provider.display_name),
                offers: vec![Offer::Retry],
            },
        ),
        AssistError::Empty => (
            "empty",
            tell(Severity::Warning, messages::NOTHING_GENERATED),
        ),
        other => ("providerError", tell(Severity::Error, other.to_string())),
    };
    FailureAdvice { reason, advice }
}

fn tell(severity: Severity, text: impl Into<String>) -> Advice {
    Advice::Tell {
        severity,
        text: text.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::providers::{ProviderError, ProviderKind};

    fn claude() -> ProviderRef {
        ProviderRef {
            id: 2,
            kind: ProviderKind::Claude,
            display_name: "Anthropic Claude".into(),
        }
    }

    const ONE: RoutingNow<'static> = RoutingNow {
        active_name: "OpenAI",
        active_count: 1,
    };
    const TWO: RoutingNow<'static> = RoutingNow {
        active_name: "OpenAI",
        active_count: 2,
    };

    #[test]
    fn offline_offers_retry_only_when_one_provider_is_active() {
        let offline = AssistError::Route(RouteError::Offline);
        let one = advise(&offline, ONE);
        assert_eq!(one.reason, "offline");
        assert_eq!(
            one.advice,
            Advice::Ask {
                severity: Severity::Error,
                text: messages::network("OpenAI"),
                offers: vec![Offer::Retry],
            }
        );
        assert_eq!(
            advise(&offline, TWO).advice,
            tell(Severity::Error, messages::OFFLINE)
        );
    }

    #[test]
    fn a_refused_request_names_the_provider_that_refused_it_not_the_active_one() {
        let error = AssistError::Route(RouteError::Fatal {
            provider: claude(),
            error: Box::new(ProviderError::BadRequest(crate::providers::Detail::new(
                "refused",
            ))),
        });
        let advice = advise(&error, ONE);
        assert_eq!(advice.reason, "providerError");
        match advice.advice {
            Advice::Tell { severity, text } => {
                assert_eq!(severity, Severity::Error);
                assert_eq!(
                    text,
                    messages::for_provider_error(ErrorKind::BadRequest, "Anthropic Claude", None)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_outcome_has_its_reason() {
        let cases: Vec<(AssistError, &str)> = vec![
            (AssistError::Cancelled, "cancelled"),
            (AssistError::Route(RouteError::Cancelled), "cancelled"),
            (
                AssistError::Route(RouteError::NotConfigured),
                "notConfigured",
            ),
            (
                AssistError::Route(RouteError::NoEuProvider),
                "notConfigured",
            ),
            (
                AssistError::Route(RouteError::AllFailed {
                    attempts: Vec::new(),
                }),
                "allFailed",
            ),
            (
                AssistError::Route(RouteError::ConsentNeeded {
                    provider: claude(),
                    attempts: Vec::new(),
                }),
                "consentNeeded",
            ),
            (
                AssistError::Route(RouteError::RateLimited {
                    retry_in: Duration::from_secs(7),
                }),
                "rateLimited",
            ),
            (AssistError::Empty, "empty"),
            (AssistError::Services("no database".into()), "providerError"),
        ];
        for (error, reason) in cases {
            assert_eq!(advise(&error, ONE).reason, reason, "{error:?}");
        }
        assert_eq!(advise(&AssistError::Cancelled, ONE).advice, Advice::Silent);
        assert_eq!(
            advise(
                &AssistError::Route(RouteError::ConsentNeeded {
                    provider: claude(),
                    attempts: Vec::new()
                }),
                ONE
            )
            .advice,
            Advice::AskEuConsent { provider: claude() }
        );
    }
}
