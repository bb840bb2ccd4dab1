/**
 * `npm run smoke -- --url <api> --key <key> [--origin <allowed origin>] [--wait <seconds>]`: the post-deploy
 * smoke test (smoke/checks.ts). Prints one PASS/FAIL line per check; exits 1 if any check failed, 2 on bad
 * arguments.
 */
import { runSmoke } from './checks';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

async function main(): Promise<number> {
  const url = arg('url') ?? process.env.TALLY_URL;
  const key = arg('key') ?? process.env.TALLY_API_KEY;
  if (!url || !key || !/^https?:\/\//.test(url)) {
    console.error('usage: npm run smoke -- --url <ApiUrl> --key <tally API key> [--origin https://app.example.com] [--wait 60]');
    return 2;
  }
  const wait = Number(arg('wait') ?? 60);
  console.log(`smoke test of ${url}`);
  const results = await runSmoke({
    url,
    key,
    origin: arg('origin'),
    countTimeoutMs: wait * 1000,
    onResult: (r) => console.log(`${r.pass ? 'PASS' : 'FAIL'}  ${r.name}: ${r.detail}`),
  });
  const failed = results.filter((r) => !r.pass).length;
  console.log(failed ? `${failed} of ${results.length} checks FAILED` : `all ${results.length} checks passed`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
