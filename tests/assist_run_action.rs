//! The "run a code action" use case (`Assistant::run_action`) without LSP: a fake host records
//! the progress events and what the author is told, and answers the edit as a test needs,
//! against the in-process provider simulator.

use std::sync::Arc;
use std::time::Duration;

use storyteller_lsp::app::{App, ProjectContext};
use storyteller_lsp::assist::actions::{Action, ActionId};
use storyteller_lsp::assist::failure::Advice;
use storyteller_lsp::assist::run::{
    ActionHost, ActionOutcome, NotApplied, ProgressEnd, ProgressEvent,
};
use storyteller_lsp::assist::{ActionRequest, Assistant, PlacedEdit};
use storyteller_lsp::config::{CredentialStoreChoice, Settings};
use storyteller_lsp::credentials::env::VarMap;
use storyteller_lsp::documents::{CharOffset, DocumentSnapshot, DocumentStore};
use storyteller_lsp::providers::ProviderKind;
use storyteller_lsp::simulator::SimulatorHandle;
use storyteller_lsp::store::providers::{self, NewProvider};
use storyteller_lsp::store::{Store, projects};
use tokio_util::sync::CancellationToken;

const URI: &str = "file:///novel/chapter-1.md";
const MANUSCRIPT: &str = "# Chapter 1: Salt\n\nMara climbed the stairs of the lighthouse. The lamp was out, and Tomas had not come back from the harbour.\n\nShe waited by the window";
const REPLY: &str = " until the boat came round the point, one lantern swinging at its bow.";

/// How the fake editor answers an edit.
#[derive(Clone, Copy)]
enum Answer {
    Apply,
    Refuse,
}

struct FakeHost {
    documents: Arc<DocumentStore>,
    events: Vec<ProgressEvent>,
    told: Vec<NotApplied>,
    answer: Answer,
    cancel: CancellationToken,
    /// Cancels the action when it starts asking a provider.
    cancel_when_asking: bool,
}

impl FakeHost {
    fn new(documents: Arc<DocumentStore>, answer: Answer) -> FakeHost {
        FakeHost {
            documents,
            events: Vec::new(),
            told: Vec::new(),
            answer,
            cancel: CancellationToken::new(),
            cancel_when_asking: false,
        }
    }
}

impl ActionHost for FakeHost {
    type Range = std::ops::Range<usize>;

    fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    async fn progress(&mut self, event: ProgressEvent) {
        if self.cancel_when_asking && matches!(event, ProgressEvent::Asking(_)) {
            self.cancel.cancel();
        }
        self.events.push(event);
    }

    fn document(&self) -> Option<DocumentSnapshot> {
        self.documents.snapshot(URI).ok()
    }

    fn can_apply(&self) -> bool {
        true
    }

    async fn apply(
        &mut self,
        _document: &DocumentSnapshot,
        edit: &PlacedEdit,
        _label: &str,
    ) -> Result<Option<std::ops::Range<usize>>, String> {
        Ok(match self.answer {
            Answer::Apply => Some(edit.replace.clone()),
            Answer::Refuse => None,
        })
    }

    async fn tell(&mut self, why: &NotApplied) {
        self.told.push(why.clone());
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    sim: SimulatorHandle,
    app: App,
    context: ProjectContext,
    documents: Arc<DocumentStore>,
    assistant: Assistant,
}

impl Fixture {
    /// A host over the fixture's documents that answers `workspace/applyEdit` with `answer`.
    fn host(&self, answer: Answer) -> FakeHost {
        FakeHost::new(self.documents.clone(), answer)
    }

    /// Continue scene at the end of the manuscript, through `host`.
    async fn continue_scene(&self, host: &mut FakeHost) -> ActionOutcome<std::ops::Range<usize>> {
        self.assistant
            .run_action(&self.context, continue_scene(self), host)
            .await
            .expect("the action runs")
    }
}

async fn fixture(kinds: &[ProviderKind]) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sim = SimulatorHandle::start()
        .await
        .expect("the simulator starts");
    let store = Store::open(dir.path().join("storyteller.db")).expect("the database");
    store
        .blocking({
            let endpoints: Vec<_> = kinds.iter().map(|k| (*k, sim.endpoint(*k))).collect();
            move |conn| {
                let project = projects::default_project(conn)?.id;
                for (i, (kind, endpoint)) in endpoints.into_iter().enumerate() {
                    let mut new = NewProvider::new(project, kind);
                    new.endpoint = Some(endpoint);
                    new.primary = i == 0;
                    providers::insert(conn, &new)?;
                }
                Ok(())
            }
        })
        .expect("providers stored");
    drop(store);
    let mut env = VarMap::default();
    env.set("OPENAI_API_KEY", "sk-test-openai-0001");
    env.set("GEMINI_API_KEY", "gemini-test-0003");
    env.set(
        "STORYTELLER_CREDENTIALS_KEY",
        "run-action-tests-credentials-key",
    );
    let settings = Settings {
        data_dir: Some(dir.path().to_path_buf()),
        credential_store: CredentialStoreChoice::File,
        ..Settings::default()
    };
    let (app, _) = App::open_with_env(settings, Vec::new(), Arc::new(env))
        .await
        .expect("the application opens");
    let context = app.context_for(None).await.expect("the default project");
    let documents = Arc::new(DocumentStore::new());
    documents.open(URI, "markdown", 1, MANUSCRIPT);
    Fixture {
        _dir: dir,
        sim,
        app,
        context,
        documents,
        assistant: Assistant::new(),
    }
}

fn continue_scene(fixture: &Fixture) -> ActionRequest {
    let document = fixture
        .documents
        .snapshot(URI)
        .expect("the document is open");
    let end = CharOffset(MANUSCRIPT.chars().count());
    ActionRequest {
        action: Action::new(ActionId::ContinueScene, None).expect("a valid action"),
        document,
        span: end..end,
        settings: Arc::new(fixture.app.settings()),
        project_root: None,
        document_path: None,
        instruction: None,
    }
}

async fn usage_of(app: &App, name: &str) -> u64 {
    let templates = storyteller_lsp::assist::templates::list(app)
        .await
        .expect("the templates");
    let value = serde_json::to_value(templates).expect("serialisable");
    value
        .as_array()
        .expect("a list")
        .iter()
        .filter(|t| t["name"] == name)
        .filter_map(|t| t["usageCount"].as_u64())
        .sum()
}

#[tokio::test]
async fn an_applied_action_reports_its_progress_counts_its_prompt_and_places_the_text() {
    let fixture = fixture(&[ProviderKind::OpenAi]).await;
    fixture
        .sim
        .script_replies(ProviderKind::OpenAi, [REPLY.to_string()]);
    let template = continue_scene(&fixture).action.template().to_string();
    let used_before = usage_of(&fixture.app, &template).await;
    let asking = fixture
        .context
        .router
        .status()
        .active
        .map(|p| p.display_name);
    assert!(asking.is_some(), "a provider is active");
    let mut host = fixture.host(Answer::Apply);

    let outcome = fixture.continue_scene(&mut host).await;

    let ActionOutcome::Applied {
        provider,
        failed_over,
        text,
        range,
    } = outcome
    else {
        panic!("not applied: {outcome:?}");
    };
    assert_eq!(Some(provider.display_name), asking);
    assert!(!failed_over);
    assert!(text.contains("lantern swinging"), "{text:?}");
    let end = MANUSCRIPT.chars().count();
    assert_eq!(range, end..end, "continued at the cursor");
    assert!(host.told.is_empty(), "{:?}", host.told);

    // Begin, asking, words as they arrive (at least one report), applying, done.
    assert_eq!(host.events[0], ProgressEvent::Begin);
    assert_eq!(host.events[1], ProgressEvent::Asking(asking));
    let middle = &host.events[2..host.events.len() - 2];
    assert!(!middle.is_empty(), "{:?}", host.events);
    assert!(
        middle.iter().all(|e| matches!(e, ProgressEvent::Words(_))),
        "{:?}",
        host.events
    );
    let words: Vec<usize> = middle
        .iter()
        .map(|e| match e {
            ProgressEvent::Words(n) => *n,
            _ => 0,
        })
        .collect();
    assert!(words.windows(2).all(|w| w[0] < w[1]), "{words:?}");
    assert_eq!(
        host.events[host.events.len() - 2..],
        [
            ProgressEvent::Applying,
            ProgressEvent::End(ProgressEnd::Done)
        ]
    );
    assert_eq!(
        usage_of(&fixture.app, &template).await,
        used_before + 1,
        "the prompt's use is counted"
    );
}

#[tokio::test]
async fn a_refused_edit_is_a_conflict_and_the_author_is_told() {
    let fixture = fixture(&[ProviderKind::OpenAi]).await;
    fixture
        .sim
        .script_replies(ProviderKind::OpenAi, [REPLY.to_string()]);
    let mut host = fixture.host(Answer::Refuse);

    let outcome = fixture.continue_scene(&mut host).await;

    assert_eq!(outcome, ActionOutcome::NotApplied(NotApplied::Conflict));
    assert_eq!(host.told, [NotApplied::Conflict]);
    assert_eq!(NotApplied::Conflict.reason(), "conflict");
    assert_eq!(
        host.events[host.events.len() - 2..],
        [
            ProgressEvent::Applying,
            ProgressEvent::End(ProgressEnd::Failed)
        ]
    );
}

#[tokio::test]
async fn a_cancelled_action_ends_silently() {
    let fixture = fixture(&[ProviderKind::OpenAi]).await;
    fixture
        .sim
        .set_latency(ProviderKind::OpenAi, Duration::from_secs(5));
    let mut host = fixture.host(Answer::Apply);
    host.cancel_when_asking = true;

    let outcome = tokio::time::timeout(Duration::from_secs(4), fixture.continue_scene(&mut host))
        .await
        .expect("cancellation does not wait for the provider");

    let ActionOutcome::NotApplied(NotApplied::Failed(failure)) = outcome else {
        panic!("not a failure: {outcome:?}");
    };
    assert_eq!(failure.reason, "cancelled");
    assert_eq!(failure.advice, Advice::Silent);
    assert_eq!(
        host.events.last(),
        Some(&ProgressEvent::End(ProgressEnd::Cancelled))
    );
    assert!(!host.events.contains(&ProgressEvent::Applying));
}

#[tokio::test]
async fn a_failure_comes_back_with_its_reason_and_advice() {
    let fixture = fixture(&[]).await;
    let mut host = fixture.host(Answer::Apply);

    let outcome = fixture.continue_scene(&mut host).await;

    let ActionOutcome::NotApplied(why) = outcome else {
        panic!("applied without a provider: {outcome:?}");
    };
    assert_eq!(why.reason(), "notConfigured");
    let NotApplied::Failed(failure) = &why else {
        panic!("not a failure: {why:?}");
    };
    assert_eq!(failure.advice, Advice::NotConfigured);
    assert_eq!(host.told, std::slice::from_ref(&why));
    assert_eq!(
        host.events,
        [
            ProgressEvent::Begin,
            ProgressEvent::Asking(None),
            ProgressEvent::End(ProgressEnd::Failed)
        ]
    );
}
