export { checkParity, maxAbsDiff, type ParityRow } from './parity.ts';
export { CONVERT_DIR, python, pythonProblem, runConverter, type PythonRun } from './python.ts';
export { PARITY_TOLERANCE, formatParity, main } from './cli.ts';
