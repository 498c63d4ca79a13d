/**
 * What the status bar shows for a `storyteller/status` report (DESIGN.md §3): the state, the
 * provider in use and its remaining per-minute quota. Pure: no `vscode` import, tested in node.
 * The report is read leniently — a field the server omits or shapes differently never throws.
 */
import type { ProviderEntry, StatusReport } from './providersPage/messages';
import { NOT_CONFIGURED, OFFLINE } from './texts';

export interface StatusView {
    /** Status bar text, with a codicon. */
    text: string;
    tooltip: string;
    /** Clicking opens the provider settings (instead of the status summary). */
    opensSettings: boolean;
    /** Shown with the warning or error background. */
    severity: 'normal' | 'warning' | 'error';
}

function providerName(p: ProviderEntry): string {
    return p.displayName || p.provider;
}

/** Finds the provider a status field refers to: an id, a provider name, or an entry object. */
export function resolveProvider(ref: unknown, providers: ProviderEntry[]): ProviderEntry | undefined {
    if (ref === null || ref === undefined) {
        return undefined;
    }
    if (typeof ref === 'object') {
        const obj = ref as Partial<ProviderEntry>;
        const byId = obj.id !== undefined ? providers.find((p) => p.id === obj.id) : undefined;
        if (byId) {
            return byId;
        }
        if (typeof obj.provider === 'string') {
            return { ...(obj as ProviderEntry), provider: obj.provider, id: obj.id ?? obj.provider };
        }
        return undefined;
    }
    if (typeof ref === 'number' || typeof ref === 'string') {
        return providers.find(
            (p) => p.id === ref || String(p.id) === String(ref) || p.provider === ref || p.displayName === ref,
        );
    }
    return undefined;
}

function quota(p: ProviderEntry | undefined): string {
    const limit = p?.rateLimit;
    if (!limit || typeof limit.remaining !== 'number') {
        return '';
    }
    return typeof limit.perMinute === 'number'
        ? ` · ${limit.remaining}/${limit.perMinute} per min`
        : ` · ${limit.remaining} left`;
}

export function describeStatus(report: StatusReport | undefined): StatusView {
    if (!report || typeof report.state !== 'string') {
        return { text: '$(book) StoryTeller', tooltip: 'StoryTeller: starting…', opensSettings: false, severity: 'normal' };
    }
    const providers = Array.isArray(report.providers) ? report.providers : [];
    const active = resolveProvider(report.active, providers) ?? resolveProvider(report.primary, providers);
    const primary = resolveProvider(report.primary, providers);
    const name = active ? providerName(active) : '';
    switch (report.state) {
        case 'ready':
            return {
                text: `$(book) StoryTeller${name ? `: ${name}` : ''}${quota(active)}`,
                tooltip: name ? `StoryTeller is ready. Provider: ${name}${active?.model ? ` (${active.model})` : ''}` : 'StoryTeller is ready.',
                opensSettings: false,
                severity: 'normal',
            };
        case 'degraded': {
            const from = primary && active && primary.id !== active.id ? ` instead of ${providerName(primary)}` : '';
            return {
                text: `$(warning) StoryTeller${name ? `: ${name}` : ''}${quota(active)}`,
                tooltip: `StoryTeller is degraded: using ${name || 'a backup provider'}${from}.`,
                opensSettings: false,
                severity: 'warning',
            };
        }
        case 'offline':
            return { text: '$(cloud-offline) StoryTeller: offline', tooltip: OFFLINE, opensSettings: false, severity: 'warning' };
        case 'notConfigured':
            return { text: '$(gear) StoryTeller: set up AI', tooltip: NOT_CONFIGURED, opensSettings: true, severity: 'warning' };
        default:
            return { text: `$(question) StoryTeller: ${report.state}`, tooltip: `StoryTeller state: ${report.state}`, opensSettings: false, severity: 'normal' };
    }
}
