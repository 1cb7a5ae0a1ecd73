/**
 * One frame of a shot's strip: sketch and colour thumbnails, where it is, why it failed, and its
 * shot QA (scores, needs review or approved), with a way into its review.
 */
import type { FrameView, ShotSummary } from '../api.ts';
import { reviewStatus } from '../qa.ts';
import { ProgressBar, StateBadge } from '../ui.tsx';
import { QaScoreList, ReviewBadge } from './QaScores.tsx';

export function FrameCard({
  frame: f,
  shot,
  reviewing,
  onShow,
  onReview,
  onBrokenImage,
}: {
  frame: FrameView;
  shot: Pick<ShotSummary, 'qaThresholds'>;
  /** This frame is open in the review panel. */
  reviewing: boolean;
  onShow: () => void;
  /** Opens the frame in the review panel, or closes it there when it is open. */
  onReview: () => void;
  onBrokenImage: () => void;
}) {
  const stepping = f.state === 'active' && f.step !== undefined && f.steps;
  const review = reviewStatus(f);
  return (
    <li
      className={`frame frame-${f.state}${review === 'needs-review' ? ' frame-needs-review' : ''}${reviewing ? ' frame-reviewing' : ''}`}
      data-frame={f.frame}
      data-state={f.state}
      data-review={review}
      aria-current={reviewing ? 'true' : undefined}
    >
      <div className="frame-head">
        <h3>
          Frame {f.frame}{' '}
          <span className="mono muted frame-file" title={f.fileName}>
            {f.fileName}
          </span>
        </h3>
        <span className="frame-badges">
          <ReviewBadge frame={f} />
          <StateBadge state={f.state} />
        </span>
      </div>
      <div className="thumbs">
        <figure>
          {f.inputUrl ? (
            <img src={f.inputUrl} alt={`Frame ${f.frame}, sketch`} loading="lazy" data-kind="sketch" onError={onBrokenImage} />
          ) : (
            <div className="thumb-empty">no sketch</div>
          )}
          <figcaption>Sketch</figcaption>
        </figure>
        <figure>
          {f.state === 'completed' && f.outputUrl ? (
            <button type="button" className="thumb-button" onClick={onShow} aria-label={`Show frame ${f.frame} in the flipbook`}>
              <img src={f.previewUrl ?? f.outputUrl} alt={`Frame ${f.frame}, colour`} loading="lazy" data-kind="colour" onError={onBrokenImage} />
            </button>
          ) : (
            <div className={`thumb-empty thumb-${f.state}`}>{f.state === 'active' ? (stepping ? `${f.step}/${f.steps}` : (f.stage ?? 'starting')) : f.state === 'completed' ? 'loading…' : f.state}</div>
          )}
          <figcaption>Colour</figcaption>
        </figure>
      </div>
      <dl className="frame-facts">
        {f.stage && (
          <div>
            <dt>Stage</dt>
            <dd>{f.stage}</dd>
          </div>
        )}
        {f.step !== undefined && f.steps ? (
          <div>
            <dt>Step</dt>
            <dd className="mono">
              {f.step}/{f.steps}
            </dd>
          </div>
        ) : null}
        {f.worker && (
          <div>
            <dt>Worker</dt>
            <dd>{f.worker}</dd>
          </div>
        )}
        {f.attempts > 1 && (
          <div>
            <dt>Attempts</dt>
            <dd>{f.attempts}</dd>
          </div>
        )}
        <div>
          <dt>Seed</dt>
          <dd>{f.seed}</dd>
        </div>
      </dl>
      {f.qa && <QaScoreList qa={f.qa} shot={shot} label={`Shot QA of frame ${f.frame}`} />}
      {stepping ? <ProgressBar value={f.step! / f.steps!} label={`Frame ${f.frame} sampler`} size="small" /> : null}
      {f.error && (
        <p className="frame-error">
          <strong>{f.error.code}</strong>
          {f.error.field ? ` (${f.error.field})` : ''}: {f.error.message}
          {f.state === 'failed' && f.error.permanent && <span className="frame-error-hint"> A retry cannot fix this: correct the input and submit again.</span>}
        </p>
      )}
      <button type="button" className="button frame-review" onClick={onReview} aria-label={`Review frame ${f.frame}`} aria-pressed={reviewing}>
        Review
      </button>
    </li>
  );
}
