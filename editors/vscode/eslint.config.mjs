// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    { ignores: ['out/**', 'node_modules/**'] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        files: ['src/**/*.ts'],
        languageOptions: { globals: globals.node },
    },
    {
        files: ['webview/**/*.ts'],
        languageOptions: { globals: globals.browser },
    },
    {
        files: ['test/**/*.mjs'],
        languageOptions: { globals: { ...globals.node, ...globals.browser } },
    },
    {
        rules: {
            eqeqeq: 'error',
            'no-console': 'error',
            '@typescript-eslint/no-floating-promises': 'off',
        },
    },
);
