/**
 * What the status bar shows for a `storyteller/status` report (DESIGN.md §3): the state, the
 * provider in use and its remaining per-minute quota. Pure: no `vscode` import, tested in node.
 * A field the server omits never throws: the item then says less.
 */
import type { ProviderEntry, ProviderRef, StatusReport } from './providersPage/messages';
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

/** The entry of `providers` that a status reference (`active`, `primary`) names, else the reference itself. */
export function resolveProvider(ref: ProviderRef | null | undefined, providers: ProviderEntry[]): ProviderEntry | undefined {
    if (ref === null || ref === undefined || typeof ref !== 'object') {
        return undefined;
    }
    return providers.find((p) => p.id === ref.id) ?? { ...ref };
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
