// An in-memory stand-in for the server's provider commands, faithful to the executeCommand
// contract of DESIGN.md §3 (argument validation with InvalidParams naming the field, test-before-
// store, one primary, masked key hints, confirmation before removal) and to the simulator's key
// rule (a key containing `invalid` or `revoked` is refused as invalid). The page tests use it to
// check the page's behaviour; the same page is run against the real server in
// providers-page-real.test.mjs.
const CATALOG = [
    { provider: 'openai', displayName: 'OpenAI', defaultModel: 'gpt-4o', defaultEndpoint: 'https://api.openai.com/v1', keyHelpUrl: 'https://platform.openai.com/api-keys', capabilities: { keyRequired: true, euResident: false, modelListing: true } },
    { provider: 'claude', displayName: 'Anthropic Claude', defaultModel: 'claude-sonnet-4-5', defaultEndpoint: 'https://api.anthropic.com/v1', keyHelpUrl: 'https://console.anthropic.com/settings/keys', capabilities: { keyRequired: true, euResident: false, modelListing: true } },
    { provider: 'gemini', displayName: 'Google Gemini', defaultModel: 'gemini-2.5-flash', defaultEndpoint: 'https://generativelanguage.googleapis.com/v1beta', keyHelpUrl: 'https://aistudio.google.com/app/apikey', capabilities: { keyRequired: true, euResident: false, modelListing: true } },
    { provider: 'deepseek', displayName: 'DeepSeek', defaultModel: 'deepseek-flash', defaultEndpoint: 'https://api.deepseek.com', keyHelpUrl: 'https://platform.deepseek.com/api_keys', capabilities: { keyRequired: true, euResident: false, modelListing: true } },
    { provider: 'yandex', displayName: 'Yandex AI Studio', defaultModel: 'yandexgpt-lite/latest', defaultEndpoint: 'https://llm.api.cloud.yandex.net/foundationModels/v1', keyHelpUrl: 'https://yandex.cloud/en/docs/iam/operations/api-key/create', capabilities: { keyRequired: true, euResident: false, modelListing: true } },
    { provider: 'scaleway', displayName: 'Scaleway (EU)', defaultModel: 'mistral-small-3.2-24b-instruct-2506', defaultEndpoint: 'https://api.scaleway.ai/v1', keyHelpUrl: 'https://console.scaleway.com/iam/api-keys', capabilities: { keyRequired: true, euResident: true, modelListing: true } },
    { provider: 'custom', displayName: 'Custom (OpenAI-compatible)', defaultModel: '', defaultEndpoint: '', keyHelpUrl: 'https://github.com/ollama/ollama/blob/main/docs/openai.md', capabilities: { keyRequired: false, euResident: false, modelListing: true } },
];

const FIELDS = {
    'storyteller.providers.list': [],
    'storyteller.providers.catalog': [],
    'storyteller.providers.test': ['provider', 'apiKey', 'model', 'endpoint', 'options', 'id'],
    'storyteller.providers.add': ['provider', 'apiKey', 'model', 'endpoint', 'displayName', 'primary', 'session', 'options'],
    'storyteller.providers.update': ['id', 'apiKey', 'model', 'endpoint', 'displayName', 'isActive'],
    'storyteller.providers.remove': ['id', 'confirmed'],
    'storyteller.providers.setPrimary': ['id'],
    'storyteller.providers.models': ['id', 'provider', 'apiKey', 'endpoint'],
};

export class ContractError extends Error {
    constructor(code, message, data) {
        super(message);
        this.code = code;
        this.data = data;
    }
}

const INVALID_PARAMS = -32602;

function invalidParams(field, why) {
    return new ContractError(INVALID_PARAMS, `invalid params: \`${field}\` ${why}`, { field });
}

export class FakeProviderContract {
    constructor() {
        this.rows = [];
        this.keys = new Map();
        this.nextId = 1;
        /** Every call as the server would see it: `{command, args}`. */
        this.calls = [];
        this.holds = new Map();
    }

    /** Makes the next call of `command` wait until the returned function is called. */
    hold(command) {
        let release;
        const gate = new Promise((resolve) => (release = resolve));
        this.holds.set(command, gate);
        return release;
    }

    callsOf(command) {
        return this.calls.filter((c) => c.command === command).map((c) => c.args);
    }

    /** The `ExecuteCommand` the page host calls. */
    execute = async (command, args) => {
        this.calls.push({ command, args: structuredClone(args) });
        const gate = this.holds.get(command);
        if (gate) {
            this.holds.delete(command);
            await gate;
        }
        const allowed = FIELDS[command];
        if (!allowed) throw new ContractError(-32601, `unknown command ${command}`);
        for (const key of Object.keys(args)) {
            if (!allowed.includes(key)) throw invalidParams(key, 'is not a known field');
        }
        const handler = this[command.slice('storyteller.providers.'.length)];
        return handler.call(this, args);
    };

    entry(kind) {
        const entry = CATALOG.find((c) => c.provider === kind);
        if (!entry) throw invalidParams('provider', `: unknown provider kind \`${kind}\``);
        return entry;
    }

    row(id) {
        const row = this.rows.find((r) => r.id === id);
        if (!row) throw invalidParams('id', `: no provider with id ${id}`);
        return row;
    }

    checkKey(entry, key, model) {
        if (typeof key === 'string' && /invalid|revoked/.test(key)) {
            throw new ContractError(-32001, `The API key for ${entry.displayName} is invalid. Please check your key in Settings.`, { kind: 'invalidKey' });
        }
        if (entry.capabilities.keyRequired && !key) throw invalidParams('apiKey', 'is required for this provider');
        return { ok: true, model: model || entry.defaultModel, latencyMs: 42 };
    }

    catalog() {
        return structuredClone(CATALOG);
    }

    list() {
        return this.rows.map((r) => ({ ...r, rateLimit: { ...r.rateLimit } }));
    }

    test(args) {
        if (args.id !== undefined) {
            const row = this.row(args.id);
            const entry = this.entry(row.provider);
            return this.checkKey(entry, args.apiKey ?? this.keys.get(row.id), args.model ?? row.model);
        }
        const entry = this.entry(args.provider);
        if (entry.provider === 'custom' && !args.endpoint) throw invalidParams('endpoint', 'is required for a custom provider');
        return this.checkKey(entry, args.apiKey, args.model);
    }

    add(args) {
        const entry = this.entry(args.provider);
        this.test({ provider: args.provider, apiKey: args.apiKey, model: args.model, endpoint: args.endpoint });
        if (this.rows.some((r) => r.provider === args.provider)) throw invalidParams('provider', 'is already configured');
        const id = this.nextId++;
        const key = args.apiKey ?? '';
        this.keys.set(id, key);
        const primary = args.primary === true || this.rows.length === 0;
        if (primary) for (const r of this.rows) r.isPrimary = false;
        this.rows.push({
            id,
            provider: entry.provider,
            displayName: args.displayName || entry.displayName,
            model: args.model || entry.defaultModel,
            endpoint: args.endpoint ?? entry.defaultEndpoint,
            isPrimary: primary,
            isActive: true,
            keySource: key ? 'keychain' : 'none',
            keyHint: key ? `••••${key.slice(-4)}` : null,
            health: 'unknown',
            lastUsedAt: null,
            rateLimit: { perMinute: 50, remaining: 50 },
        });
        return { id };
    }

    update(args) {
        const row = this.row(args.id);
        if (args.apiKey !== undefined) {
            this.checkKey(this.entry(row.provider), args.apiKey, args.model ?? row.model);
            this.keys.set(row.id, args.apiKey);
            row.keyHint = `••••${args.apiKey.slice(-4)}`;
        }
        if (args.model !== undefined) row.model = args.model;
        if (args.endpoint !== undefined) row.endpoint = args.endpoint;
        if (args.displayName !== undefined) row.displayName = args.displayName;
        if (args.isActive !== undefined) {
            if (typeof args.isActive !== 'boolean') throw invalidParams('isActive', 'must be true or false');
            row.isActive = args.isActive;
        }
        return { id: row.id };
    }

    remove(args) {
        const row = this.row(args.id);
        // The real server asks the user itself when `confirmed` is missing.
        if (args.confirmed !== true) return { removed: false, asked: true };
        this.rows = this.rows.filter((r) => r !== row);
        this.keys.delete(row.id);
        if (row.isPrimary && this.rows.length > 0) this.rows[0].isPrimary = true;
        return { removed: true };
    }

    setPrimary(args) {
        const row = this.row(args.id);
        for (const r of this.rows) r.isPrimary = r === row;
        return { id: row.id };
    }

    models(args) {
        const kind = args.id !== undefined ? this.row(args.id).provider : this.entry(args.provider).provider;
        const entry = this.entry(kind);
        return { models: [entry.defaultModel, `${entry.defaultModel}-mini`].filter(Boolean) };
    }
}
