/**
 * What the per-frame cost cuts leave exact and what they approximate: flicker's measured cells and
 * line fidelity against straightforward implementations of their definitions (any colour stride),
 * and the colour sample (colourStride 2, the default) against every cell (colourStride 1) on a
 * grainy character scene, within the bounds README.md states.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Planar } from '@celfarm/pipeline';
import { deltaE00 } from '../src/ciede2000.ts';
import { linearChannel, luminance, luminanceOfL } from '../src/lab.ts';
import { dilate, labGrid, lineMap, poolAny, regions } from '../src/raster.ts';
import { analyzeFrame, referencePalette, scoreFrame, type FrameAnalysis, type QaOptions } from '../src/score-frame.ts';
import { flicker } from '../src/scores.ts';
import { CHARACTER_COLOURS, characterFrame } from './fixtures.ts';

/** Flicker as README.md defines it, cell by cell, colours compared on the cells `lab` holds. */
function flickerByDefinition(cur: FrameAnalysis, prev: FrameAnalysis, jnd: number, radius: number): { mean: number | null; overJnd: number | null; measuredShare: number } {
  const { width: W, height: H, cell, stride } = cur;
  const gw = Math.ceil(W / cell);
  const gh = Math.ceil(H / cell);
  const m = gw * gh;
  const la = cur.regions.labels;
  const lb = prev.regions.labels;
  const changed = new Uint8Array(m).map((_, i) => ((la[i] === 0) !== (lb[i] === 0) ? 1 : 0));
  const near = dilate(changed, gw, gh, Math.ceil(radius / cell));
  const overlap = new Map<string, number>();
  for (let i = 0; i < m; i++) if (la[i] && lb[i]) overlap.set(`${la[i]},${lb[i]}`, (overlap.get(`${la[i]},${lb[i]}`) ?? 0) + 1);
  const best = (side: 0 | 1, id: number): number => {
    let bestId = 0;
    let bestCount = 0;
    for (const [key, count] of overlap) {
      const [a, b] = key.split(',').map(Number) as [number, number];
      const [mine, other] = side === 0 ? [a, b] : [b, a];
      if (mine === id && (count > bestCount || (count === bestCount && other < bestId))) [bestId, bestCount] = [other, count];
    }
    return bestId;
  };
  let measured = 0;
  let sampled = 0;
  let sum = 0;
  let over = 0;
  for (let gy = 0; gy < gh; gy++) {
    for (let gx = 0; gx < gw; gx++) {
      const i = gy * gw + gx;
      const [a, b] = [la[i]!, lb[i]!];
      const ok = !near[i] && (a === 0 && b === 0 ? true : a !== 0 && b !== 0 && best(0, a) === b && best(1, b) === a);
      if (!ok) continue;
      measured++;
      if (gx % stride || gy % stride) continue;
      sampled++;
      const j = (gy / stride) * cur.lab.width + gx / stride;
      const A = cur.lab;
      const B = prev.lab;
      if (A.L[j] === B.L[j] && A.a[j] === B.a[j] && A.b[j] === B.b[j]) continue;
      const e = deltaE00(A.L[j]!, A.a[j]!, A.b[j]!, B.L[j]!, B.a[j]!, B.b[j]!);
      sum += e;
      if (e > jnd) over++;
    }
  }
  const measuredShare = measured / m;
  if (sampled === 0 || measuredShare < 0.01) return { mean: null, overJnd: null, measuredShare };
  return { mean: sum / sampled, overJnd: over / sampled, measuredShare };
}

/** Line fidelity as README.md defines it: the full grid's cell means, the darkest fill within two cells, each pixel's Y. */
function keptByDefinition(output: Planar, sketch: Planar, cell: number, tolerance: number, darkL = 50, contrast = 10): number {
  const { width: W, height: H } = output;
  const n = W * H;
  const lines = lineMap(sketch, 'dark-lines', 0.5);
  const gw = Math.ceil(W / cell);
  const gh = Math.ceil(H / cell);
  const labels = regions(poolAny(lines, W, H, cell), gw, gh).labels;
  const lab = labGrid(output, cell);
  const Y = (i: number) => luminance(linearChannel(output.data[i]!), linearChannel(output.data[n + i]!), linearChannel(output.data[2 * n + i]!));
  let kept = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (!lines[y * W + x]) continue;
      const gx = Math.floor(x / cell);
      const gy = Math.floor(y / cell);
      let fill = Infinity;
      for (let yy = Math.max(0, gy - 2); yy <= Math.min(gh - 1, gy + 2); yy++) {
        for (let xx = Math.max(0, gx - 2); xx <= Math.min(gw - 1, gx + 2); xx++) if (labels[yy * gw + xx] !== 0) fill = Math.min(fill, lab.L[yy * gw + xx]!);
      }
      const yMax = luminanceOfL(Math.min(darkL, fill - contrast));
      let found = false;
      for (let yy = Math.max(0, y - tolerance); yy <= Math.min(H - 1, y + tolerance); yy++) {
        for (let xx = Math.max(0, x - tolerance); xx <= Math.min(W - 1, x + tolerance); xx++) if (Y(yy * W + xx) <= yMax) found = true;
      }
      if (found) kept++;
    }
  }
  return kept;
}

const S = 192;
const still = characterFrame(S, 0, 1);

describe('flicker and line fidelity: exact whatever the colour stride', () => {
  it('measures the cells and compares the colours as the definition does, for strides 1–3, cells 3 and 4, radii 0–200 px', () => {
    const moved = characterFrame(S, 9, 2);
    for (const [cell, stride, radius] of [
      [4, 1, 8],
      [4, 2, 8],
      [4, 3, 8],
      [3, 2, 8],
      [4, 2, 0],
      [4, 2, 200],
    ] as const) {
      const options: QaOptions = { cell, colourStride: stride };
      const cur = analyzeFrame(moved, options);
      const prev = analyzeFrame(still, options);
      const got = flicker(cur, prev, { changeRadius: radius });
      const want = flickerByDefinition(cur, prev, 2.3, radius);
      assert.deepEqual(got, want, `cell ${cell}, stride ${stride}, radius ${radius}`);
      // 200 px (50 cells, dilated in two steps of the bit rasters) leaves nothing of a 192² frame.
      if (radius < 200) assert.ok(got.measuredShare > 0.5 && got.measuredShare < 1, `something is measured and something is not: ${got.measuredShare}`);
      else assert.equal(got.measuredShare, 0);
    }
  });

  it('keeps line pixels as the definition does, at any stride, for inks from full to painted over', () => {
    for (const ink of [1, 0.6, 0.3, 0]) {
      const frame = characterFrame(S, 0, 3, { ink });
      for (const tolerance of [0, 1, 2]) {
        const want = keptByDefinition(frame.output, frame.sketch, 4, tolerance);
        for (const stride of [1, 2]) {
          const a = analyzeFrame(frame, { colourStride: stride, lineTolerance: tolerance });
          assert.equal(a.lineKept, want, `ink ${ink}, tolerance ${tolerance}, stride ${stride}`);
        }
      }
    }
  });
});

describe('the colour sample (colourStride 2) against every cell', () => {
  it('stays within the stated bounds on a grainy character scene: palette 0.8, flicker mean 3% + 0.02, share over the JND 0.005; the rest equal', () => {
    const recolour = (k: number, rgb: readonly [number, number, number]) => CHARACTER_COLOURS.map((c, i) => (i === k ? rgb : c));
    const cases: Array<[string, ReadonlyArray<readonly [number, number, number]> | undefined]> = [
      ['same colours', undefined],
      ['coat purple', recolour(0, [0.6, 0.2, 0.7])],
      ['hair brown', recolour(2, [0.45, 0.3, 0.15])],
      ['all darker', CHARACTER_COLOURS.map((c) => c.map((v) => 0.85 * v) as unknown as readonly [number, number, number])],
    ];
    // Relative for the mean: its sampling error grows with the change it measures.
    const worst = { palette: 0, flickerMean: 0, flickerShare: 0 };
    for (const size of [256, 384]) {
      const ref = characterFrame(size, 0, 1);
      const refPalette = referencePalette(ref.output, ref.characterMask);
      for (const [name, colours] of cases) {
        const frame = characterFrame(size, 6, 2, { colours, lineWidth: 3 });
        const every = scoreFrame({ frame, previous: ref, reference: refPalette }, { colourStride: 1 });
        const sample = scoreFrame({ frame, previous: ref, reference: refPalette });
        for (const k of ['palette', 'flickerMean', 'flickerShare'] as const) {
          const off = Math.abs(sample.scores[k].value! - every.scores[k].value!);
          worst[k] = Math.max(worst[k], k === 'flickerMean' ? off / (0.03 * every.scores[k].value! + 0.02) : off);
        }
        assert.equal(sample.scores.lineFidelity.value, every.scores.lineFidelity.value, `${size}² ${name}: line fidelity`);
        assert.equal(sample.flickerMeasuredShare, every.flickerMeasuredShare, `${size}² ${name}: measured share`);
        assert.deepEqual(sample.flagged, every.flagged, `${size}² ${name}: the same flags`);
      }
    }
    assert.ok(worst.palette <= 0.8, `palette off by ${worst.palette}`);
    assert.ok(worst.flickerMean <= 1, `flicker mean off by ${worst.flickerMean} × (3% + 0.02)`);
    assert.ok(worst.flickerShare <= 0.005, `share over the JND off by ${worst.flickerShare}`);
  });
});
