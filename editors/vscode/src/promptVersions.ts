/**
 * "StoryTeller: Prompt Versions": every prompt template version from `storyteller.prompts.list`
 * with whether it is active, its A/B weight, how often it was used and how often the author kept
 * what it wrote; picking one offers the choices `storyteller.prompts.setActive` knows (this
 * version alone, or in the A/B pool with a weight; weight 0 takes it out of the draw).
 *
 * Pure functions only (no `vscode` import), so the node tests exercise exactly what the command
 * shows and sends.
 */

/** One entry of `storyteller.prompts.list` `{templates: [...]}`, as far as the picker reads it. */
export interface PromptVersion {
    name: string;
    version: number;
    description?: string;
    active: boolean;
    weight: number;
    usageCount: number;
    successCount?: number;
    successRate: number;
    meaningful?: boolean;
    source?: string;
}

export const PromptVersionTexts = {
    title: 'StoryTeller: Prompt Versions',
    placeholder: 'Pick a prompt version to use it or change its A/B weight',
    empty: 'StoryTeller: no prompt templates are loaded.',
    onlyThis: 'Use only this version',
    onlyThisDetail: 'The other versions of this template are switched off.',
    withWeight: 'Add to the A/B test with a weight…',
    withWeightDetail: 'The other versions keep their weights; each request draws a version by weight.',
    turnOff: 'Take out of the A/B test (weight 0)',
    weightPrompt: 'A/B weight for this version (0 or more; the versions are drawn in proportion)',
    weightInvalid: 'A number of 0 or more, please.',
} as const;

/** The versions in a `storyteller.prompts.list` result; anything malformed is left out. */
export function promptVersions(result: unknown): PromptVersion[] {
    const templates = (result as { templates?: unknown } | null | undefined)?.templates;
    if (!Array.isArray(templates)) {
        return [];
    }
    return templates.filter(
        (t): t is PromptVersion =>
            typeof t === 'object' &&
            t !== null &&
            typeof (t as PromptVersion).name === 'string' &&
            typeof (t as PromptVersion).version === 'number',
    );
}

function percent(rate: number): string {
    return `${Math.round(rate * 100)}%`;
}

/** What the quick pick shows for one version. */
export interface VersionItem {
    label: string;
    description: string;
    detail: string;
    version: PromptVersion;
}

/** One item per version: "continue_scene v2", "active · weight 1", "14 uses · 64% kept". */
export function versionItems(versions: PromptVersion[]): VersionItem[] {
    return versions.map((v) => {
        const state = v.active ? `$(check) active · weight ${v.weight}` : 'inactive';
        const usage = v.usageCount === 1 ? '1 use' : `${v.usageCount} uses`;
        const success = v.usageCount > 0 ? ` · ${percent(v.successRate)} kept` : '';
        const meaning = v.usageCount > 0 && v.meaningful === false ? ' (too few uses to judge yet)' : '';
        return {
            label: `${v.name} v${v.version}`,
            description: state,
            detail: `${usage}${success}${meaning}${v.description ? ` — ${v.description}` : ''}`,
            version: v,
        };
    });
}

export type VersionChoice = 'only' | 'weight' | 'off';

/** The choices offered for a picked version. */
export function choiceItems(): { label: string; detail?: string; choice: VersionChoice }[] {
    return [
        { label: PromptVersionTexts.onlyThis, detail: PromptVersionTexts.onlyThisDetail, choice: 'only' },
        { label: PromptVersionTexts.withWeight, detail: PromptVersionTexts.withWeightDetail, choice: 'weight' },
        { label: PromptVersionTexts.turnOff, choice: 'off' },
    ];
}

/** The input box's check of a weight: a message, or undefined when it is fine. */
export function checkWeight(answer: string): string | undefined {
    return parseWeight(answer) === undefined ? PromptVersionTexts.weightInvalid : undefined;
}

function parseWeight(answer: string): number | undefined {
    const text = answer.trim();
    if (!/^\d+(\.\d+)?$|^\.\d+$/.test(text)) {
        return undefined;
    }
    const weight = Number(text);
    return Number.isFinite(weight) && weight >= 0 ? weight : undefined;
}

/**
 * The `storyteller.prompts.setActive` arguments for a choice, or undefined when nothing should be
 * sent (Escape, or a weight that is not a number of 0 or more).
 */
export function setActiveArgs(
    version: PromptVersion,
    choice: VersionChoice | undefined,
    weightAnswer?: string,
): { name: string; version: number; weight?: number } | undefined {
    const base = { name: version.name, version: version.version };
    switch (choice) {
        case 'only':
            return base;
        case 'off':
            return { ...base, weight: 0 };
        case 'weight': {
            const weight = weightAnswer === undefined ? undefined : parseWeight(weightAnswer);
            return weight === undefined ? undefined : { ...base, weight };
        }
        default:
            return undefined;
    }
}
