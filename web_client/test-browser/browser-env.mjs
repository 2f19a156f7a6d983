// A real weft-server serving web_client/dist and Debian's chromium, for the
// browser tests (harness.mjs) and the page benchmark (bench/page-bench.mjs).
// No node:test here, so that a plain script can use it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const root = new URL('..', import.meta.url).pathname;
export const buildDir = path.join(root, '../build');

/** Starts weft-server on a free port with `extraArgs`; resolves to { base, port, kill(signal), stop() }. */
export async function startServer(extraArgs = []) {
  const serverBin = process.env.WEFT_SERVER ?? path.join(buildDir, 'weft-server');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-e2e-'));
  const server = spawn(serverBin, ['--port', '0', '--data-dir', dataDir, '--web-root', path.join(root, 'dist'),
    '--log-level', 'info', ...extraArgs]);
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 15000);
    let buf = '';
    server.stderr.on('data', (d) => {
      buf += d;
      const m = buf.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${buf}`)));
  });
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    /** Signals the server (e.g. SIGKILL for a crash) and leaves its data directory until stop(). */
    kill(signal) { server.kill(signal); },
    stop() {
      server.kill('SIGTERM');
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Launches headless chromium with the flags the project mandates. Playwright
 * gives every launch a fresh temporary --user-data-dir and removes it on close. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  });
}
