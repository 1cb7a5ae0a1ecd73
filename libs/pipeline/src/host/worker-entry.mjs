// Entry of the inference thread: registers tsx in this thread (loader hooks passed through
// execArgv do not reach worker threads on Node 20), then loads the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
