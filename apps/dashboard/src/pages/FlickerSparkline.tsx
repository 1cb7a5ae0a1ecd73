/**
 * Flicker across the shot: each frame's mean ΔE00 against the previous one, in frame order, the
 * threshold as a dashed line, frames flagged for flicker marked. A click picks the nearest frame;
 * with focus, ← → step from frame to frame and Home / End jump to the ends.
 */
import type { KeyboardEvent, MouseEvent } from 'react';
import type { FrameView } from '../api.ts';
import { formatScore, nearestPoint, sparkline, stepPoint, type SparkPoint } from '../qa.ts';

const BOX = { width: 800, height: 90, pad: 6 };
/** Beyond this many measured frames only the flagged and the selected one get a dot. */
const ALL_DOTS_UP_TO = 300;

export function FlickerSparkline({
  frames,
  frameCount,
  threshold,
  selected,
  onSelect,
}: {
  /** Completed frames with their QA, in frame order. */
  frames: readonly FrameView[];
  frameCount: number;
  /** Flicker mean threshold (ΔE00). */
  threshold: number | undefined;
  selected: number | undefined;
  onSelect: (frame: number) => void;
}) {
  const line = sparkline(frames, frameCount, BOX, threshold);
  const { points } = line;
  if (points.length === 0) {
    return <p className="muted sparkline-empty">No flicker scores yet: a frame’s comes once the frame before it has completed too.</p>;
  }
  const current = points.find((p) => p.frame === selected);
  const flagged = points.filter((p) => p.flagged).length;
  const describe = (p: SparkPoint) => `Frame ${p.frame}: flicker ${formatScore('flickerMean', p.value)}${p.flagged ? ', flagged' : ''}`;

  const onClick = (e: MouseEvent<SVGSVGElement>) => {
    const box = e.currentTarget.getBoundingClientRect();
    const p = nearestPoint(points, ((e.clientX - box.left) / box.width) * BOX.width);
    if (p) onSelect(p.frame);
  };
  const onKey = (e: KeyboardEvent<SVGSVGElement>) => {
    const p =
      e.key === 'ArrowRight' || e.key === 'ArrowUp'
        ? stepPoint(points, selected, 1)
        : e.key === 'ArrowLeft' || e.key === 'ArrowDown'
          ? stepPoint(points, selected, -1)
          : e.key === 'Home'
            ? points[0]
            : e.key === 'End'
              ? points.at(-1)
              : undefined;
    if (!p) return;
    e.preventDefault();
    onSelect(p.frame);
  };

  return (
    <figure className="sparkline">
      <svg
        viewBox={`0 0 ${BOX.width} ${BOX.height}`}
        className="sparkline-svg"
        role="slider"
        tabIndex={0}
        aria-label="Flicker by frame"
        aria-valuemin={1}
        aria-valuemax={frameCount}
        aria-valuenow={current?.frame}
        aria-valuetext={current ? describe(current) : 'No frame selected'}
        onClick={onClick}
        onKeyDown={onKey}
        data-points={points.length}
      >
        <rect x={0} y={0} width={BOX.width} height={BOX.height} className="sparkline-bg" />
        {line.thresholdY !== null && <line x1={0} x2={BOX.width} y1={line.thresholdY} y2={line.thresholdY} className="sparkline-threshold" />}
        <path d={line.path} className="sparkline-line" />
        {points
          .filter((p) => p.flagged || points.length <= ALL_DOTS_UP_TO)
          .map((p) => (
            <circle key={p.frame} cx={p.x} cy={p.y} r={p.flagged ? 3.5 : 2} className={p.flagged ? 'sparkline-flagged' : 'sparkline-dot'} data-frame={p.frame}>
              <title>{describe(p)}</title>
            </circle>
          ))}
        {current && (
          <g className="sparkline-selected">
            <line x1={current.x} x2={current.x} y1={0} y2={BOX.height} />
            <circle cx={current.x} cy={current.y} r={6} />
          </g>
        )}
      </svg>
      <figcaption className="muted small">
        Mean ΔE00 against the previous frame, frame 1 to {frameCount}, top {formatScore('flickerMean', line.top)}
        {threshold !== undefined && <>; dashed: the threshold, {formatScore('flickerMean', threshold)}</>}. {points.length} frames measured,{' '}
        {flagged === 0 ? 'none' : flagged} flagged for flicker. Click a point, or focus the chart and use ← →, to review that frame.
      </figcaption>
    </figure>
  );
}
