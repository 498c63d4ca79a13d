// What the extension's "Continue scene with…" and "Rewrite selection in my style…" commands send
// for each answer of their input boxes (src/steering.ts): Escape and empty answers send nothing,
// answers are trimmed, the server's limits are checked before sending.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const steering = require('../out/src/steering.js');

const ACTION = {
    action: 'continueScene',
    uri: 'file:///novel/chapter-01.md',
    range: { start: { line: 2, character: 9 }, end: { line: 2, character: 9 } },
    version: 4,
};

test('an instruction is added to the code action arguments, trimmed', () => {
    assert.deepEqual(steering.withInstruction(ACTION, '  Tomas admits he lied.\n'), {
        ...ACTION,
        instruction: 'Tomas admits he lied.',
    });
    assert.deepEqual(steering.withInstruction(ACTION, 'Мара молчит.'), { ...ACTION, instruction: 'Мара молчит.' });
});

test('Escape, an empty answer, an over-long one or odd arguments send nothing', () => {
    assert.equal(steering.withInstruction(ACTION, undefined), undefined);
    assert.equal(steering.withInstruction(ACTION, ''), undefined);
    assert.equal(steering.withInstruction(ACTION, ' \n\t '), undefined);
    assert.equal(steering.withInstruction(ACTION, 'x'.repeat(1001)), undefined);
    assert.equal(steering.withInstruction(undefined, 'go on'), undefined);
    assert.equal(steering.withInstruction(['not', 'an', 'object'], 'go on'), undefined);
    // Characters as the server counts them: 1,000 emoji are 2,000 UTF-16 units but fit.
    assert.ok(steering.withInstruction(ACTION, '🌊'.repeat(1000)));
    assert.equal(steering.checkInstruction('🌊'.repeat(1001)), steering.ContinueWithTexts.tooLong);
    assert.equal(steering.checkInstruction('fine'), undefined);
});

test('a style brief becomes the tone of a rewrite of the selection', () => {
    const range = { start: { line: 0, character: 0 }, end: { line: 0, character: 12 } };
    assert.deepEqual(steering.rewriteInStyle('file:///n.md', range, 3, ' like Hemingway, terse '), {
        action: 'rewriteSelection',
        tone: 'like Hemingway, terse',
        uri: 'file:///n.md',
        range,
        version: 3,
    });
    assert.equal(steering.rewriteInStyle('file:///n.md', range, 3, undefined), undefined);
    assert.equal(steering.rewriteInStyle('file:///n.md', range, 3, '   '), undefined);
    assert.equal(steering.rewriteInStyle('file:///n.md', range, 3, 'x'.repeat(201)), undefined);
    assert.equal(steering.rewriteInStyle('file:///n.md', range, 3, 'terse\nand cold'), undefined);
    assert.equal(steering.checkStyleBrief('terse\u0007'), steering.StyleBriefTexts.oneLine);
    assert.equal(steering.checkStyleBrief('x'.repeat(201)), steering.StyleBriefTexts.tooLong);
    assert.equal(steering.checkStyleBrief('warmer, more humour'), undefined);
});
