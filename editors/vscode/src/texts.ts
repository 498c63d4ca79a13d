/**
 * The user-facing texts the extension shows itself, verbatim from DESIGN.md §7 and
 * `src/messages.rs` (the server's single source of texts). Everything else the user reads comes
 * from the server. `test/settings-contract.test.mjs` fails when these drift from `src/messages.rs`.
 */
import type { PageTexts } from './providersPage/messages';

export const NOT_CONFIGURED = 'AI providers not configured. Would you like to set one up now?';
export const EMPTY_PROVIDER_LIST = 'No AI providers configured. Add one to enable AI features.';
export const PROVIDER_ADDED = 'Provider added successfully';
export const TESTING_CONNECTION = 'Testing connection...';
export const OFFLINE =
    "AI features require an internet connection. You can continue writing and use AI features when you're back online.";
export const ALL_FAILED =
    'All configured AI providers are unavailable. Please check your internet connection or provider status.';

/** Templates: `{model}` / `{provider}` are replaced by `fill`. */
export const TEST_OK = 'Connection successful! Model: {model}';
export const CONFIRM_REMOVE =
    "Remove {provider}? This will delete the stored API key and you'll need to re-enter it if you want to use this provider again.";

export const Actions = {
    configureAiProvider: 'Configure AI Provider',
    maybeLater: 'Maybe Later',
    remove: 'Remove',
    cancel: 'Cancel',
} as const;

/** Replaces `{name}` placeholders; unknown placeholders stay as they are. */
export function fill(template: string, values: Record<string, string>): string {
    return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
        Object.prototype.hasOwnProperty.call(values, name) ? values[name] : whole,
    );
}

export const PAGE_TEXTS: PageTexts = {
    emptyList: EMPTY_PROVIDER_LIST,
    testingConnection: TESTING_CONNECTION,
    testOk: TEST_OK,
    providerAdded: PROVIDER_ADDED,
    confirmRemove: CONFIRM_REMOVE,
    remove: Actions.remove,
    cancel: Actions.cancel,
};
