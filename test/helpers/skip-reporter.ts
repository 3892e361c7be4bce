// A node:test reporter that writes one JSON line per skipped test or suite ({file, name, reason}),
// so test/run.sh and the reliability runner can count and name what did not run. Used beside
// the spec reporter: --test-reporter=./test/helpers/skip-reporter.ts --test-reporter-destination=FILE
import type { TestEvent } from 'node:test/reporters';

export default async function* skipReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip, file, name } = event.data as { skip?: string | boolean; file?: string; name: string };
    if (skip === undefined || skip === false) continue;
    yield `${JSON.stringify({ file: file ?? '', name, reason: typeof skip === 'string' ? skip : '' })}\n`;
  }
}
