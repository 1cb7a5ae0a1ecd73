export { checkParity, maxAbsDiff, parityError, PARITY_UNITS, type ParityRow } from './parity.ts';
export { CONVERT_DIR, python, pythonProblem, runConverter, type PythonRun } from './python.ts';
export { PARITY_TOLERANCE, formatParity, main } from './cli.ts';
