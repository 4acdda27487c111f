/**
 * `npm run bench`: every measurement as a ratio against a baseline taken in
 * the same run, on the same machine. No timing is asserted in unit tests.
 */
import { benchSynth, reportSynth } from './synth';

async function main(): Promise<void> {
  const synth = await benchSynth();
  console.log(reportSynth(synth).join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
