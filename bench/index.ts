/**
 * `npm run bench`: every measurement as a ratio against a baseline taken in
 * the same run, on the same machine. No timing is asserted in unit tests.
 */
import { benchDispatch, reportDispatch } from './dispatch';
import { benchExtract, reportExtract } from './extract';
import { benchGateway, reportGateway } from './gateway';
import { benchReconcile, reportReconcile } from './reconcile';
import { benchRunner, reportRunner } from './runner';
import { benchSynth, reportSynth } from './synth';

async function main(): Promise<void> {
  console.log(reportSynth(await benchSynth()).join('\n'));
  console.log(reportRunner(await benchRunner()).join('\n'));
  console.log(reportDispatch(await benchDispatch()).join('\n'));
  console.log(reportExtract(benchExtract()).join('\n'));
  console.log(reportReconcile(await benchReconcile()).join('\n'));
  console.log(reportGateway(await benchGateway()).join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
