// The AI Providers page, running inside the webview. It draws the list and the add/edit form and
// asks the extension host for every operation (`storyteller.providers.*` on the server); it decides
// nothing a provider rule depends on. An API key lives only in the password field and in the one
// request that carries it: never in variables that outlive the request, never in webview state.
import type {
    CatalogEntry,
    HostToPage,
    PageError,
    PageTexts,
    ProviderEntry,
    ProviderOp,
} from '../src/providersPage/messages';

interface WebviewApi {
    postMessage(message: unknown): void;
}
declare function acquireVsCodeApi(): WebviewApi;

const vscode = acquireVsCodeApi();
const texts = JSON.parse(byId('storyteller-texts').textContent ?? '{}') as PageTexts;

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
    const el = document.getElementById(id);
    if (!el) {
        throw new Error(`missing element #${id}`);
    }
    return el as T;
}

function fill(template: string, values: Record<string, string>): string {
    return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
        Object.prototype.hasOwnProperty.call(values, name) ? values[name] : whole,
    );
}

// ---- requests to the host -------------------------------------------------------------------

let nextRequestId = 1;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: PageError) => void }>();

function request(op: ProviderOp, args: Record<string, unknown> = {}): Promise<unknown> {
    const requestId = nextRequestId++;
    return new Promise((resolve, reject) => {
        pending.set(requestId, { resolve, reject });
        markBusy();
        vscode.postMessage({ type: 'op', requestId, op, args });
    });
}

window.addEventListener('message', (event: MessageEvent) => {
    const message = event.data as HostToPage;
    if (!message || typeof message !== 'object') {
        return;
    }
    if (message.type === 'opResult') {
        const waiter = pending.get(message.requestId);
        if (!waiter) {
            return;
        }
        pending.delete(message.requestId);
        markBusy();
        if (message.ok) {
            waiter.resolve(message.result);
        } else {
            waiter.reject(message.error);
        }
    } else if (message.type === 'status') {
        scheduleRefresh();
    } else if (message.type === 'edit') {
        editWanted = message.providerId;
        scheduleRefresh();
    }
});

/** The array a list command answers (`providers.list`, `providers.catalog`, `providers.models`). */
function arrayIn(result: unknown): unknown[] {
    return Array.isArray(result) ? result : [];
}

function errorText(error: unknown): string {
    if (error && typeof error === 'object' && typeof (error as PageError).message === 'string') {
        return (error as PageError).message;
    }
    return String(error);
}

// ---- page state -----------------------------------------------------------------------------

let catalog: CatalogEntry[] = [];
let providers: ProviderEntry[] = [];

interface FormState {
    mode: 'add' | 'edit';
    editing?: ProviderEntry;
    /** The current field values passed a connection test; any edit clears it. */
    tested: boolean;
    changingKey: boolean;
    busy: boolean;
}
let form: FormState | undefined;
/** A provider whose edit form the editor asked for ("Update Key"); opened once it is listed. */
let editWanted: number | string | undefined;

const el = {
    addButton: byId<HTMLButtonElement>('add-provider'),
    notice: byId('notice'),
    empty: byId('empty-state'),
    table: byId<HTMLTableElement>('provider-table'),
    rows: byId<HTMLTableSectionElement>('provider-rows'),
    formSection: byId('provider-form-section'),
    formHeading: byId('form-heading'),
    form: byId<HTMLFormElement>('provider-form'),
    kind: byId<HTMLSelectElement>('provider-kind'),
    keyHelp: byId<HTMLAnchorElement>('key-help'),
    keyField: byId('key-field'),
    apiKey: byId<HTMLInputElement>('api-key'),
    keyHint: byId('key-hint'),
    changeKey: byId<HTMLButtonElement>('change-key'),
    signIn: byId<HTMLButtonElement>('sign-in'),
    model: byId<HTMLInputElement>('model'),
    modelOptions: byId<HTMLDataListElement>('model-options'),
    endpointField: byId('endpoint-field'),
    endpoint: byId<HTMLInputElement>('endpoint'),
    folderField: byId('folder-field'),
    folderId: byId<HTMLInputElement>('folder-id'),
    primaryField: byId('primary-field'),
    setPrimary: byId<HTMLInputElement>('set-primary'),
    testResult: byId('test-result'),
    testButton: byId<HTMLButtonElement>('test-connection'),
    save: byId<HTMLButtonElement>('save'),
    cancel: byId<HTMLButtonElement>('cancel-form'),
    confirm: byId('confirm'),
    confirmText: byId('confirm-text'),
    confirmYes: byId<HTMLButtonElement>('confirm-yes'),
    confirmNo: byId<HTMLButtonElement>('confirm-no'),
    toast: byId('toast'),
};

function catalogEntry(kind: string): CatalogEntry | undefined {
    return catalog.find((c) => c.provider === kind);
}

function nameOf(p: ProviderEntry): string {
    return p.displayName || catalogEntry(p.provider)?.displayName || p.provider;
}

/**
 * A letter badge for a provider kind, coloured per kind by the stylesheet. The letter is drawn by
 * CSS (`content: attr(data-letter)`), so it adds nothing to the text of the row or the heading.
 */
function providerIcon(kind: string): HTMLSpanElement {
    const icon = document.createElement('span');
    icon.className = 'provider-icon';
    icon.dataset.kind = kind;
    const name = catalogEntry(kind)?.displayName ?? kind;
    icon.dataset.letter = (name.trim()[0] ?? '?').toUpperCase();
    icon.setAttribute('aria-hidden', 'true');
    return icon;
}

// ---- notices --------------------------------------------------------------------------------

function showNotice(text: string): void {
    el.notice.textContent = text;
    el.notice.hidden = false;
}

function clearNotice(): void {
    el.notice.hidden = true;
    el.notice.textContent = '';
}

let toastTimer: number | undefined;
function hideToast(): void {
    el.toast.hidden = true;
}

function showToast(text: string): void {
    el.toast.textContent = text;
    el.toast.hidden = false;
    if (toastTimer !== undefined) {
        window.clearTimeout(toastTimer);
    }
    toastTimer = window.setTimeout(hideToast, 4000);
}

// ---- the list -------------------------------------------------------------------------------

const HEALTH: Record<string, string> = {
    ok: 'Healthy',
    cooling: 'Cooling down',
    down: 'Unavailable',
    unknown: 'Not checked yet',
};

function keyDescription(p: ProviderEntry): string {
    if (p.keySource === 'none') {
        return 'No key';
    }
    const hint = p.keyHint ?? '';
    return p.keySource === 'env' ? `${hint} (environment)`.trim() : hint;
}

/** "Last used 5 min ago · median 420 ms" from the server's request log; '' before first use. */
function usageText(p: ProviderEntry, now: number = Date.now()): string {
    const parts: string[] = [];
    const at = p.lastUsedAt ? Date.parse(p.lastUsedAt) : NaN;
    if (!Number.isNaN(at)) {
        const minutes = Math.max(0, Math.round((now - at) / 60000));
        const ago =
            minutes < 1 ? 'just now'
            : minutes < 60 ? `${minutes} min ago`
            : minutes < 48 * 60 ? `${Math.round(minutes / 60)} h ago`
            : `${Math.round(minutes / (24 * 60))} days ago`;
        parts.push(`Last used ${ago}`);
    }
    if (typeof p.medianLatencyMs === 'number') {
        parts.push(`median ${p.medianLatencyMs} ms`);
    }
    return parts.join(' · ');
}

function statusCell(p: ProviderEntry): HTMLTableCellElement {
    const td = cell(HEALTH[p.health ?? 'unknown'] ?? '');
    td.className = 'health';
    td.dataset.health = p.health ?? 'unknown';
    const usage = usageText(p);
    if (usage) {
        const line = document.createElement('div');
        line.className = 'provider-usage';
        line.textContent = usage;
        td.append(line);
    }
    return td;
}

function cell(text: string): HTMLTableCellElement {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
}

function renderList(): void {
    el.rows.replaceChildren();
    if (providers.length === 0) {
        el.empty.textContent = texts.emptyList;
        el.empty.hidden = false;
        el.table.hidden = true;
        return;
    }
    el.empty.hidden = true;
    el.table.hidden = false;
    for (const p of providers) {
        const name = nameOf(p);
        const tr = document.createElement('tr');
        tr.dataset.id = String(p.id);
        tr.dataset.provider = p.provider;

        const nameCell = cell(name);
        nameCell.className = 'provider-name';
        nameCell.prepend(providerIcon(p.provider));
        tr.append(nameCell, cell(p.model ?? ''), cell(keyDescription(p)), statusCell(p));

        const active = document.createElement('input');
        active.type = 'checkbox';
        active.className = 'active-toggle';
        active.checked = p.isActive !== false;
        active.setAttribute('aria-label', `Active: ${name}`);
        active.addEventListener('change', () => void toggleActive(p, active));
        const activeCell = document.createElement('td');
        activeCell.append(active);

        const primary = document.createElement('input');
        primary.type = 'radio';
        primary.name = 'primary-provider';
        primary.className = 'primary-radio';
        primary.checked = p.isPrimary === true;
        primary.setAttribute('aria-label', `Primary: ${name}`);
        primary.addEventListener('change', () => void makePrimary(p));
        const primaryCell = document.createElement('td');
        primaryCell.append(primary);

        const edit = document.createElement('button');
        edit.type = 'button';
        edit.className = 'secondary edit';
        edit.textContent = 'Edit';
        edit.setAttribute('aria-label', `Edit ${name}`);
        edit.addEventListener('click', () => openForm('edit', p));
        const del = document.createElement('button');
        del.type = 'button';
        del.className = 'danger delete';
        del.textContent = 'Delete';
        del.setAttribute('aria-label', `Delete ${name}`);
        del.addEventListener('click', () => confirmDelete(p));
        const actions = document.createElement('td');
        actions.className = 'row-actions';
        actions.append(edit, del);

        tr.append(activeCell, primaryCell, actions);
        el.rows.append(tr);
    }
}

/** The newest list request; an older answer arriving after it would show a stale list. */
let listGeneration = 0;

async function refresh(): Promise<void> {
    const generation = ++listGeneration;
    try {
        const result = await request('list');
        if (generation !== listGeneration) {
            return;
        }
        providers = arrayIn(result) as ProviderEntry[];
        renderList();
        openWantedEdit();
    } catch (error) {
        showNotice(errorText(error));
    }
}

/** Opens the edit form the editor asked for, once the catalogue and that provider are known. */
function openWantedEdit(): void {
    if (editWanted === undefined || catalog.length === 0) {
        return;
    }
    const wanted = providers.find((p) => String(p.id) === String(editWanted));
    editWanted = undefined;
    if (wanted) {
        // Asked for because of its key ("Update Key", "Open Settings"): ready for the new one.
        openForm('edit', wanted);
        changeKey();
    }
}

let refreshTimer: number | undefined;

/**
 * `body[data-busy]`: whether a request or a scheduled refresh is outstanding, so that tools (and
 * the browser test) can tell when the page shows the server's latest answer.
 */
function markBusy(): void {
    document.body.dataset.busy = String(pending.size > 0 || refreshTimer !== undefined);
}
function scheduleRefresh(): void {
    if (refreshTimer !== undefined) {
        window.clearTimeout(refreshTimer);
    }
    refreshTimer = window.setTimeout(() => {
        refreshTimer = undefined;
        markBusy();
        void refresh();
    }, 50);
    markBusy();
}

async function toggleActive(p: ProviderEntry, box: HTMLInputElement): Promise<void> {
    clearNotice();
    try {
        await request('update', { id: p.id, isActive: box.checked });
    } catch (error) {
        box.checked = !box.checked;
        showNotice(errorText(error));
    }
    await refresh();
}

async function makePrimary(p: ProviderEntry): Promise<void> {
    clearNotice();
    try {
        await request('setPrimary', { id: p.id });
    } catch (error) {
        showNotice(errorText(error));
    }
    await refresh();
}

function confirmDelete(p: ProviderEntry): void {
    el.confirmText.textContent = fill(texts.confirmRemove, { provider: nameOf(p) });
    el.confirmYes.textContent = texts.remove;
    el.confirmNo.textContent = texts.cancel;
    el.confirm.hidden = false;
    el.confirmNo.focus();
    el.confirmYes.onclick = async () => {
        el.confirm.hidden = true;
        clearNotice();
        try {
            await request('remove', { id: p.id, confirmed: true });
            if (form?.editing?.id === p.id) {
                closeForm();
            }
        } catch (error) {
            showNotice(errorText(error));
        }
        await refresh();
    };
    el.confirmNo.onclick = () => {
        el.confirm.hidden = true;
    };
}

// ---- the add / edit form --------------------------------------------------------------------

function selectedKind(): string {
    return form?.mode === 'edit' && form.editing ? form.editing.provider : el.kind.value;
}

function keyRequired(kind: string): boolean {
    return catalogEntry(kind)?.capabilities?.keyRequired !== false;
}

/** Shows the fields that belong to the chosen provider and the buttons the state allows. */
function syncForm(): void {
    if (!form) {
        return;
    }
    const kind = selectedKind();
    const entry = catalogEntry(kind);
    el.endpointField.hidden = kind !== 'custom';
    el.folderField.hidden = !(kind === 'yandex' && form.mode === 'add');
    el.primaryField.hidden = form.mode !== 'add';
    const editingKey = form.mode === 'add' || form.changingKey;
    el.apiKey.hidden = !editingKey;
    el.keyHint.hidden = editingKey;
    el.changeKey.hidden = editingKey;
    // A kind with a browser sign-in (OpenRouter): the key comes from the vendor, no pasting.
    el.signIn.hidden = !(entry?.capabilities?.authTypes ?? []).includes('oauth');
    el.signIn.disabled = form.busy;
    // Only where there is a key to get: the server sends no link text for Custom.
    if (entry?.keyHelpUrl && entry.keyHelpText && editingKey) {
        el.keyHelp.href = entry.keyHelpUrl;
        el.keyHelp.textContent = entry.keyHelpText;
        el.keyHelp.hidden = false;
    } else {
        el.keyHelp.hidden = true;
    }
    const keyMissing = editingKey && keyRequired(kind) && el.apiKey.value.trim() === '';
    const endpointMissing = kind === 'custom' && el.endpoint.value.trim() === '';
    el.testButton.disabled = form.busy || keyMissing || endpointMissing;
    el.save.disabled = form.busy || !form.tested;
}

function invalidateTest(): void {
    if (!form) {
        return;
    }
    form.tested = false;
    el.testResult.hidden = true;
    el.testResult.textContent = '';
    el.testResult.className = 'test-result';
    syncForm();
}

function fillCatalogSelect(): void {
    el.kind.replaceChildren();
    for (const entry of catalog) {
        const option = document.createElement('option');
        option.value = entry.provider;
        option.textContent = entry.displayName;
        el.kind.append(option);
    }
}

function setModelOptions(models: string[]): void {
    el.modelOptions.replaceChildren();
    for (const id of models) {
        const option = document.createElement('option');
        option.value = id;
        el.modelOptions.append(option);
    }
}

function openForm(mode: 'add' | 'edit', editing?: ProviderEntry): void {
    clearNotice();
    hideToast();
    form = { mode, editing, tested: false, changingKey: false, busy: false };
    el.form.reset();
    el.apiKey.value = '';
    setModelOptions([]);
    if (mode === 'add') {
        el.formHeading.textContent = 'Add Provider';
        el.kind.disabled = false;
        el.model.value = catalogEntry(el.kind.value)?.defaultModel ?? '';
        el.setPrimary.checked = providers.length === 0;
    } else if (editing) {
        el.formHeading.textContent = `Edit ${nameOf(editing)}`;
        el.formHeading.prepend(providerIcon(editing.provider));
        el.kind.value = editing.provider;
        el.kind.disabled = true;
        el.keyHint.textContent = keyDescription(editing) || 'No key stored';
        el.model.value = editing.model ?? '';
        el.endpoint.value = editing.endpoint ?? '';
    }
    invalidateTest();
    el.formSection.hidden = false;
    (mode === 'add' ? el.kind : el.model).focus();
}

function closeForm(): void {
    form = undefined;
    el.form.reset();
    el.apiKey.value = '';
    el.testResult.hidden = true;
    el.formSection.hidden = true;
}

/** The arguments of `test`, `add` or `update` for the current field values. */
function formArgs(purpose: 'test' | 'save'): Record<string, unknown> {
    const kind = selectedKind();
    const args: Record<string, unknown> = {};
    const model = el.model.value.trim();
    const endpoint = el.endpoint.value.trim();
    const key = el.apiKey.value.trim();
    if (form?.mode === 'edit' && form.editing) {
        args.id = form.editing.id;
        if (purpose === 'test') {
            args.provider = kind;
        }
        if (form.changingKey && key) {
            args.apiKey = key;
        }
        if (purpose === 'test' || model !== (form.editing.model ?? '')) {
            args.model = model;
        }
        if (kind === 'custom' && (purpose === 'test' || endpoint !== (form.editing.endpoint ?? ''))) {
            args.endpoint = endpoint;
        }
        return args;
    }
    args.provider = kind;
    if (key) {
        args.apiKey = key;
    }
    if (model) {
        args.model = model;
    }
    if (kind === 'custom' && endpoint) {
        args.endpoint = endpoint;
    }
    const folder = el.folderId.value.trim();
    if (kind === 'yandex' && folder) {
        args.options = { folderId: folder };
    }
    if (purpose === 'save') {
        args.primary = el.setPrimary.checked;
    }
    return args;
}

async function testConnection(): Promise<void> {
    if (!form) {
        return;
    }
    const current = form;
    current.busy = true;
    current.tested = false;
    el.testResult.hidden = false;
    // The stylesheet draws a spinner while pending, then ✓ or ✗ before the server's verdict.
    el.testResult.className = 'test-result pending';
    el.testResult.textContent = texts.testingConnection;
    el.testButton.setAttribute('aria-busy', 'true');
    syncForm();
    try {
        const result = (await request('test', formArgs('test'))) as { model?: string } | null;
        if (form !== current) {
            return;
        }
        const model = result?.model || el.model.value.trim();
        el.testResult.className = 'test-result ok';
        el.testResult.textContent = fill(texts.testOk, { model });
        current.tested = true;
        void offerModels();
    } catch (error) {
        if (form !== current) {
            return;
        }
        el.testResult.className = 'test-result error';
        el.testResult.textContent = errorText(error);
    } finally {
        current.busy = false;
        el.testButton.removeAttribute('aria-busy');
        syncForm();
    }
}

/**
 * Offers the provider's own model list; a provider without a listing keeps the typed model.
 * `fillEmpty`: an empty model field takes the first model listed (a Custom server has no default).
 */
async function offerModels(fillEmpty = false): Promise<void> {
    if (!form) {
        return;
    }
    const current = form;
    const kind = selectedKind();
    const args: Record<string, unknown> = {};
    if (form.mode === 'edit' && form.editing && !form.changingKey) {
        args.id = form.editing.id;
    } else {
        args.provider = kind;
        const key = el.apiKey.value.trim();
        if (key) {
            args.apiKey = key;
        }
        if (kind === 'custom') {
            args.endpoint = el.endpoint.value.trim();
        }
    }
    try {
        const result = await request('models', args);
        const ids = arrayIn(result)
            .map((m) => String((m as { id?: unknown })?.id ?? ''))
            .filter(Boolean);
        if (form !== current) {
            return;
        }
        setModelOptions(ids);
        if (fillEmpty && ids.length > 0 && el.model.value.trim() === '') {
            el.model.value = ids[0];
            invalidateTest();
        }
    } catch {
        // Model listing is a convenience: the default model stays usable without it.
    }
}

async function save(): Promise<void> {
    if (!form || !form.tested || form.busy) {
        return;
    }
    const current = form;
    current.busy = true;
    syncForm();
    try {
        if (current.mode === 'add') {
            await request('add', formArgs('save'));
            showToast(texts.providerAdded);
        } else {
            await request('update', formArgs('save'));
            showToast('Changes saved');
        }
        closeForm();
        await refresh();
    } catch (error) {
        current.tested = false;
        el.testResult.hidden = false;
        el.testResult.className = 'test-result error';
        el.testResult.textContent = errorText(error);
        current.busy = false;
        syncForm();
    }
}

/** "Sign in with OpenRouter": the server opens the browser and saves the key as a session that
 * the provider uses; the page only waits and refreshes. */
async function signIn(): Promise<void> {
    if (!form || form.busy) {
        return;
    }
    const current = form;
    current.busy = true;
    syncForm();
    el.testResult.hidden = false;
    el.testResult.className = 'test-result';
    el.testResult.textContent = 'Waiting for the browser…';
    try {
        await request('signIn', { provider: selectedKind() });
        showToast('Signed in with OpenRouter');
        closeForm();
        await refresh();
    } catch (error) {
        el.testResult.className = 'test-result error';
        el.testResult.textContent = errorText(error);
        current.busy = false;
        syncForm();
    }
}

// ---- wiring ---------------------------------------------------------------------------------

el.addButton.addEventListener('click', () => openForm('add'));
el.kind.addEventListener('change', () => {
    el.model.value = catalogEntry(el.kind.value)?.defaultModel ?? '';
    setModelOptions([]);
    invalidateTest();
});
for (const input of [el.apiKey, el.model, el.endpoint, el.folderId]) {
    input.addEventListener('input', invalidateTest);
}
// A Custom server's models are known once its address is: offer them, and fill an empty model.
el.endpoint.addEventListener('change', () => {
    if (selectedKind() === 'custom' && el.endpoint.value.trim() !== '') {
        void offerModels(true);
    }
});
function changeKey(): void {
    if (!form) {
        return;
    }
    form.changingKey = true;
    el.apiKey.value = '';
    invalidateTest();
    el.apiKey.focus();
}
el.changeKey.addEventListener('click', changeKey);
el.testButton.addEventListener('click', () => void testConnection());
el.signIn.addEventListener('click', () => void signIn());
el.form.addEventListener('submit', (event) => {
    event.preventDefault();
    void save();
});
el.cancel.addEventListener('click', closeForm);
document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !el.confirm.hidden) {
        el.confirm.hidden = true;
    }
});

async function start(): Promise<void> {
    vscode.postMessage({ type: 'ready' });
    try {
        const result = await request('catalog');
        catalog = arrayIn(result) as CatalogEntry[];
        fillCatalogSelect();
    } catch (error) {
        showNotice(errorText(error));
    }
    await refresh();
    document.body.dataset.ready = 'true';
}

void start();
