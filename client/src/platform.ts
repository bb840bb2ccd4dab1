/**
 * What the client uses from its runtime, found at run time so that one build works on Node, Deno, Bun,
 * Cloudflare Workers and browsers: `fetch` and `crypto.getRandomValues` everywhere; node:zlib and
 * node:fs through `process.getBuiltinModule` where it exists (Node ≥ 20.16), else `CompressionStream`
 * or no compression, and no spool. No `import` of a Node module, so bundlers for other runtimes have
 * nothing to stub. The types below are the few members used, so the published declarations need
 * neither @types/node nor the DOM library.
 */

/** The part of WHATWG `fetch` the client uses. `globalThis.fetch` by default. */
export type FetchLike = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body: Uint8Array | string;
    redirect?: 'manual';
    // An AbortSignal; typed loosely so that no DOM or Node types are needed.
    signal?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  },
) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;

/** node:zlib's callback gzip, the one function the client needs from it. */
export interface NodeZlib {
  gzip(data: string | Uint8Array, options: { level: number }, callback: (err: Error | null, result: Uint8Array) => void): void;
}

/** The node:http / node:https members the client uses. */
export interface NodeHttp {
  Agent: new (options: { keepAlive: boolean; maxSockets: number }) => unknown;
  request(
    options: Record<string, unknown>,
    callback: (res: {
      statusCode?: number;
      headers: Record<string, string | string[] | undefined>;
      setEncoding(e: 'utf8'): void;
      on(event: 'data', fn: (chunk: string) => void): unknown;
      on(event: 'end' | 'error', fn: (err?: unknown) => void): unknown;
    }) => void,
  ): {
    setTimeout(ms: number, fn: () => void): unknown;
    destroy(err?: Error): void;
    on(event: 'error', fn: (err: unknown) => void): unknown;
    end(body: Uint8Array | string): void;
  };
}

/** The node:fs functions the spool uses. */
export interface NodeFs {
  mkdirSync(path: string, options: { recursive: true }): unknown;
  readdirSync(path: string): string[];
  readFileSync(path: string, encoding: 'utf8'): string;
  writeFileSync(path: string, data: string, options?: { flag?: string }): void;
  openSync(path: string, flags: string): number;
  writeSync(fd: number, data: string): number;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  fsyncSync(fd: number): void;
}

interface ProcessLike {
  pid?: number;
  getBuiltinModule?(id: string): unknown;
  kill?(pid: number, signal: number | string): boolean;
}

interface GlobalsLike {
  process?: ProcessLike;
  fetch?: FetchLike;
  crypto?: { getRandomValues<T extends Uint8Array>(array: T): T };
  CompressionStream?: new (format: 'gzip') => unknown;
  Response?: new (body: unknown) => { body: { pipeThrough(t: unknown): unknown }; arrayBuffer(): Promise<ArrayBuffer> };
  Buffer?: { byteLength(s: string, encoding: 'utf8'): number };
  console?: { warn(...args: unknown[]): void };
}

export const globals = globalThis as unknown as GlobalsLike;

/** A Node built-in module, when this runtime has `process.getBuiltinModule`. */
export function nodeBuiltin<T>(id: string): T | undefined {
  try {
    return globals.process?.getBuiltinModule?.(id) as T | undefined;
  } catch {
    return undefined;
  }
}

/** Whether the process with this id is alive (false when the runtime cannot tell). */
export function processAlive(pid: number): boolean {
  try {
    return globals.process?.kill?.(pid, 0) ?? false;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** UTF-8 byte length of a string (Buffer.byteLength on Node, a loop elsewhere). */
export function utf8Length(s: string): number {
  const B = globals.Buffer;
  if (B) return B.byteLength(s, 'utf8');
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
