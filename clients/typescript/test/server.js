/**
 * A real `seedcore serve` for the tests: embedded SQLite in a temporary folder, a free port,
 * no built-in workers (so only the Worker under test runs tasks), leases of 3 s.
 *
 * The binary is `SEEDCORE_BIN`, else `../../target/debug/seedcore` relative to this package.
 * Every server started is stopped by `stop()`; tests call it in `after`.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.SEEDCORE_BIN || resolve(here, '../../../target/debug/seedcore');

/** Resolves once `check()` is truthy; fails the test after `timeoutMs`. */
export async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A port nobody listens on now. */
export function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

export class Server {
  /** @param {Record<string, string>} env settings beside the defaults */
  constructor(env = {}) {
    this.env = env;
    this.dir = mkdtempSync(join(tmpdir(), 'seedcore-ts-'));
    this.port = 0;
    this.child = null;
    this.output = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts (or starts again, on the same port and data) and waits until it answers. */
  async start() {
    if (!this.port) this.port = await freePort();
    this.child = spawn(BIN, ['serve'], {
      env: {
        PATH: process.env.PATH,
        HOST: '127.0.0.1',
        PORT: String(this.port),
        SEEDCORE_DATA_DIR: this.dir,
        SEEDCORE_AUTH: 'off',
        SEEDCORE_LEASE_SECONDS: '3',
        SEEDCORE_WORKER_CONCURRENCY: '0',
        SEEDCORE_RETRY_BASE_SECONDS: '0.1',
        SEEDCORE_RETRY_MAX_SECONDS: '0.2',
        LOG_LEVEL: 'warn',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.failed = null;
    this.child.once('error', (error) => (this.failed = error));
    const keep = (chunk) => (this.output = (this.output + chunk).slice(-20_000));
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    await this.ready();
    return this;
  }

  async ready() {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (this.failed || this.child.exitCode !== null) break;
      try {
        const answer = await fetch(`${this.url}/health`);
        if (answer.ok) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const why = this.failed ? String(this.failed) : this.output;
    throw new Error(`seedcore did not start (${BIN}; set SEEDCORE_BIN):\n${why}`);
  }

  /** Stops the process (it is started again by `start()`); resolves once it exited. */
  async kill(signal = 'SIGKILL') {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  /** Stopped, its data is gone: started again, it is a new, empty server on the same port. */
  async wipe() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir);
  }

  async stop() {
    await this.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
