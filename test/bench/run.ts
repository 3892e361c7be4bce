// `npm run bench`: every benchmark, each printing its figures next to a baseline measured in the
// same run. BENCH_ONLY=embedded,forwarding,kubernetes picks some.
import { benchEmbedded } from './embedded.ts';
import { benchForwarding } from './forwarding.ts';
import { benchKubernetes } from './kubernetes.ts';

const only = new Set((process.env.BENCH_ONLY ?? 'embedded,forwarding,kubernetes').split(','));
const started = Date.now();

if (only.has('embedded')) console.log(`${await benchEmbedded({ total: Number(process.env.BENCH_CALLS ?? 20_000) })}\n`);
if (only.has('forwarding')) console.log(`${await benchForwarding({ total: Number(process.env.BENCH_FORWARDING_CALLS ?? 5_000), concurrency: 8 })}\n`);
if (only.has('kubernetes')) console.log(`${await benchKubernetes()}\n`);
console.log(`benchmarks done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
