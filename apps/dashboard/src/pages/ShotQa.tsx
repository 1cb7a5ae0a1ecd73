/** The shot page's QA section: how many frames wait for review, flicker across the shot, and the review panel. */
import type { FrameView, ShotView } from '../api.ts';
import type { ShotFrames } from '../frames.ts';
import { thresholdOf } from '../qa.ts';
import { FlickerSparkline } from './FlickerSparkline.tsx';
import { ReviewPanel } from './ReviewPanel.tsx';

/** The frame under review, and whether the choice came from the sparkline (which keeps the focus). */
export interface Selection {
  frame: number;
  fromChart: boolean;
}

export function ShotQa({
  view,
  frames,
  selection,
  now,
  onSelect,
  onApproved,
  onRerendered,
  onBrokenImage,
}: {
  view: ShotView;
  frames: ShotFrames;
  selection: Selection | undefined;
  now: number;
  onSelect: (selection: Selection | undefined) => void;
  onApproved: (frame: FrameView) => void;
  onRerendered: (view: ShotView) => void;
  onBrokenImage: () => void;
}) {
  const scored = frames.colour.filter((f) => f.qa);
  if (scored.length === 0 && view.flagged === 0 && !selection) return null;
  const threshold = thresholdOf('flickerMean', scored.find((f) => f.qa?.thresholds.flickerMean !== undefined)?.qa, view);
  const k = selection?.frame;
  // The review panel's frames: as read for it, else as the flipbook holds them (completed ones).
  const find = (n: number) => frames.focused.find((f) => f.frame === n) ?? frames.colour.find((f) => f.frame === n);

  return (
    <section aria-labelledby="qa-title" className="qa-section">
      <div className="qa-head">
        <h2 id="qa-title">Shot QA</h2>
        <p className="qa-counts">
          <span data-count="needs-review">
            <strong>{view.needsReview}</strong> {view.needsReview === 1 ? 'frame needs' : 'frames need'} review
          </span>
          <span data-count="flagged">
            <strong>{view.flagged}</strong> flagged
          </span>
          <span>
            {scored.length} of {view.frameCount} scored
          </span>
        </p>
      </div>
      <FlickerSparkline
        frames={frames.colour}
        frameCount={view.frameCount}
        threshold={threshold}
        selected={k}
        onSelect={(frame) => onSelect({ frame, fromChart: true })}
      />
      {k !== undefined && (
        <ReviewPanel
          shot={view}
          frameNumber={k}
          frame={find(k)}
          previous={k > 1 ? find(k - 1) : undefined}
          now={now}
          takeFocus={!selection!.fromChart}
          onClose={() => onSelect(undefined)}
          onApproved={onApproved}
          onRerendered={onRerendered}
          onBrokenImage={onBrokenImage}
        />
      )}
    </section>
  );
}
