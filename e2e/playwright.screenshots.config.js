// Takes the screenshots in docs/screenshots/ (`npm run screenshots`); not part of the tests.
import base from './playwright.config.js';
import { defineConfig } from '@playwright/test';

export default defineConfig({
  ...base,
  testDir: './screenshots',
  timeout: 120_000,
});
