// Types shared by the extension host and the AI Providers page (webview). Types only: both sides
// import them, neither emits code for them.

/** Shapes of the executeCommand contract (DESIGN.md §3), as far as the page reads them. */
export interface RateLimitInfo {
    perMinute?: number;
    remaining?: number;
}

export interface ProviderEntry {
    id: number | string;
    provider: string;
    displayName?: string;
    model?: string;
    endpoint?: string | null;
    isPrimary?: boolean;
    isActive?: boolean;
    keySource?: 'keychain' | 'file' | 'env' | 'none';
    keyHint?: string | null;
    health?: 'ok' | 'cooling' | 'down' | 'unknown';
    lastUsedAt?: string | null;
    /** From the server's request log (last 30 days); absent before the first request. */
    medianLatencyMs?: number | null;
    rateLimit?: RateLimitInfo | null;
}

export interface CatalogCapabilities {
    keyRequired?: boolean;
    euResident?: boolean;
    modelListing?: boolean;
    /** `oauth`: the kind offers a browser sign-in (`storyteller.providers.signIn`). */
    authTypes?: string[];
}

export interface CatalogEntry {
    provider: string;
    displayName: string;
    defaultModel?: string;
    defaultEndpoint?: string;
    keyHelpUrl?: string;
    /** The text of the link to `keyHelpUrl` ("Get your OpenAI API key"); absent: no link. */
    keyHelpText?: string | null;
    capabilities?: CatalogCapabilities;
}

/** How `storyteller/status` names a provider (`active`, `primary`). */
export interface ProviderRef {
    id: number | string;
    provider: string;
    displayName?: string;
}

/** `storyteller.status` and the `storyteller/status` notification. */
export interface StatusReport {
    state: 'ready' | 'offline' | 'notConfigured' | 'degraded' | string;
    /** The provider answering now; null while none can. */
    active?: ProviderRef | null;
    primary?: ProviderRef | null;
    /** True while a backup answers instead of the primary. */
    failover?: boolean;
    providers?: ProviderEntry[];
}

/** The operations the page may ask for; the host maps each to `storyteller.providers.<op>`. */
export type ProviderOp =
    | 'catalog'
    | 'list'
    | 'test'
    | 'add'
    | 'update'
    | 'remove'
    | 'setPrimary'
    | 'models'
    | 'signIn';

/** An error the page shows: the server's user message, and its kind when the server gave one. */
export interface PageError {
    message: string;
    kind?: string;
}

export type PageToHost =
    | { type: 'ready' }
    | { type: 'op'; requestId: number; op: ProviderOp; args: Record<string, unknown> };

export type HostToPage =
    | { type: 'opResult'; requestId: number; ok: true; result: unknown }
    | { type: 'opResult'; requestId: number; ok: false; error: PageError }
    | { type: 'status'; status: StatusReport }
    /** Open the edit form of this provider (`providerId` of `storyteller/openSettings`). */
    | { type: 'edit'; providerId: number | string };

/** The §7 texts the page shows; `{model}` and `{provider}` are filled in by the page. */
export interface PageTexts {
    emptyList: string;
    testingConnection: string;
    testOk: string;
    providerAdded: string;
    confirmRemove: string;
    remove: string;
    cancel: string;
}
