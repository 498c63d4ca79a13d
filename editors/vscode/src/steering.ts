/**
 * "Continue scene with…" and rewriting in the author's own style: the server lists the first as a
 * code action whose command (`storyteller.continueSceneWith`) this extension runs — it asks the
 * author what should happen next, then sends `storyteller.generate` with the action's arguments
 * plus `instruction`. The second asks for a style brief and sends `storyteller.generate` with it
 * as `tone`. Escape or an empty answer cancels: nothing is sent.
 *
 * Pure functions only (no `vscode` import), so the node tests exercise exactly what the commands
 * do with an answer.
 */

/** The server's limits (src/assist/actions.rs): longer answers are refused there too. */
export const MAX_INSTRUCTION_CHARS = 1000;
export const MAX_STYLE_BRIEF_CHARS = 200;

export const ContinueWithTexts = {
    prompt: 'What should happen next? (Escape cancels)',
    placeholder: 'e.g. Tomas admits he lied about the boat',
    tooLong: `At most ${MAX_INSTRUCTION_CHARS} characters.`,
} as const;

export const StyleBriefTexts = {
    prompt: 'Rewrite the selection in which style? (Escape cancels)',
    placeholder: 'e.g. like Hemingway, terse — or vivid, concise, tense, lyrical, plain',
    tooLong: `At most ${MAX_STYLE_BRIEF_CHARS} characters.`,
    oneLine: 'One line, please.',
} as const;

function isObject(value: unknown): value is Record<string, unknown> {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Characters as the server counts them (Unicode scalar values, not UTF-16 units). */
function chars(text: string): number {
    return Array.from(text).length;
}

/** The input box's check of an instruction: a message, or undefined when it is fine. */
export function checkInstruction(answer: string): string | undefined {
    return chars(answer.trim()) > MAX_INSTRUCTION_CHARS ? ContinueWithTexts.tooLong : undefined;
}

/** The input box's check of a style brief. */
export function checkStyleBrief(answer: string): string | undefined {
    const brief = answer.trim();
    if (chars(brief) > MAX_STYLE_BRIEF_CHARS) {
        return StyleBriefTexts.tooLong;
    }
    // eslint-disable-next-line no-control-regex
    return /[\u0000-\u001f\u007f-\u009f]/.test(brief) ? StyleBriefTexts.oneLine : undefined;
}

/**
 * The `storyteller.generate` arguments for the author's answer to "What should happen next?":
 * the code action's arguments plus the trimmed `instruction`; undefined when the author cancelled
 * (Escape: `answer` undefined), answered nothing, or the action's arguments are not an object.
 */
export function withInstruction(actionArguments: unknown, answer: string | undefined): Record<string, unknown> | undefined {
    if (!isObject(actionArguments) || answer === undefined) {
        return undefined;
    }
    const instruction = answer.trim();
    if (instruction === '' || checkInstruction(instruction) !== undefined) {
        return undefined;
    }
    return { ...actionArguments, instruction };
}

/** A position in the document, as LSP sends it. */
export interface Position {
    line: number;
    character: number;
}

/**
 * The `storyteller.generate` arguments of a rewrite of `range` in `uri` (document `version`) in
 * the author's style brief; undefined when cancelled, empty or refused by the check.
 */
export function rewriteInStyle(
    uri: string,
    range: { start: Position; end: Position },
    version: number,
    answer: string | undefined,
): Record<string, unknown> | undefined {
    if (answer === undefined) {
        return undefined;
    }
    const tone = answer.trim();
    if (tone === '' || checkStyleBrief(tone) !== undefined) {
        return undefined;
    }
    return { action: 'rewriteSelection', tone, uri, range, version };
}
