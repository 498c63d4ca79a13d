/**
 * The extension-host side of the AI Providers page: it turns the page's operation requests into
 * `workspace/executeCommand` calls of the provider contract (DESIGN.md §3) and hands back the
 * result or the server's error message. The server owns every rule (testing before storing, one
 * primary, key rotation); this class only carries messages.
 *
 * It must never log, store or echo request arguments: they can hold an API key. No `vscode`
 * import, so the same class runs inside VS Code and in the browser test against a real server.
 */
import { Commands } from '../contract';
import type { HostToPage, PageError, PageToHost, ProviderOp, StatusReport } from './messages';

/** Runs one server command with its single JSON-object argument and resolves to its result. */
export type ExecuteCommand = (command: string, args: Record<string, unknown>) => Promise<unknown>;

const OPS: ReadonlySet<ProviderOp> = new Set<ProviderOp>([
    'catalog',
    'list',
    'test',
    'add',
    'update',
    'remove',
    'setPrimary',
    'models',
    'signIn',
]);

export class ProvidersPageHost {
    private lastStatus: StatusReport | undefined;
    /** The page said `ready`: it listens for messages now. */
    private pageReady = false;
    /** An edit form asked for before the page was ready. */
    private pendingEdit: number | string | undefined;

    constructor(
        private readonly execute: ExecuteCommand,
        private readonly post: (message: HostToPage) => unknown,
    ) {}

    /** Handles one message from the page. Never throws: failures go back to the page. */
    async receive(message: unknown): Promise<void> {
        if (!isPageMessage(message)) {
            return;
        }
        if (message.type === 'ready') {
            this.pageReady = true;
            if (this.lastStatus) {
                this.post({ type: 'status', status: this.lastStatus });
            }
            if (this.pendingEdit !== undefined) {
                this.post({ type: 'edit', providerId: this.pendingEdit });
                this.pendingEdit = undefined;
            }
            return;
        }
        const { requestId, op, args } = message;
        try {
            const result = await this.execute(Commands.providers(op), args);
            this.post({ type: 'opResult', requestId, ok: true, result });
        } catch (error) {
            this.post({ type: 'opResult', requestId, ok: false, error: pageError(error) });
        }
    }

    /** Asks the page to open the edit form of provider `providerId` (now, or once it is ready). */
    edit(providerId: number | string): void {
        if (this.pageReady) {
            this.post({ type: 'edit', providerId });
        } else {
            this.pendingEdit = providerId;
        }
    }

    /** Forwards a `storyteller/status` report so the page refreshes its list. */
    status(report: StatusReport): void {
        this.lastStatus = report;
        this.post({ type: 'status', status: report });
    }
}

function isPageMessage(message: unknown): message is PageToHost {
    if (message === null || typeof message !== 'object') {
        return false;
    }
    const m = message as Record<string, unknown>;
    if (m.type === 'ready') {
        return true;
    }
    return (
        m.type === 'op' &&
        typeof m.requestId === 'number' &&
        typeof m.op === 'string' &&
        OPS.has(m.op as ProviderOp) &&
        m.args !== null &&
        typeof m.args === 'object' &&
        !Array.isArray(m.args)
    );
}

/** The server's message and error kind from a JSON-RPC error (`data.kind`) or any thrown value. */
export function pageError(error: unknown): PageError {
    if (error !== null && typeof error === 'object') {
        // A JSON-RPC error of the contract: the author-facing text in `message`, `data.kind`.
        const e = error as { message?: unknown; data?: unknown };
        const data = e.data !== null && typeof e.data === 'object' ? (e.data as Record<string, unknown>) : {};
        const message = typeof e.message === 'string' && e.message ? e.message : 'The request failed.';
        return { message, kind: typeof data.kind === 'string' ? data.kind : undefined };
    }
    return { message: typeof error === 'string' ? error : 'The request failed.' };
}
