/** Shot QA on the page: a frame's scores with units (those past threshold stand out) and its review badge. */
import type { FrameView, ShotSummary } from '../api.ts';
import { formatScore, reviewStatus, SCORE_INFO, scoreRows, thresholdText, type FrameQa } from '../qa.ts';

/** "Needs review" or "Approved"; nothing for a frame that waits for no one. */
export function ReviewBadge({ frame }: { frame: Pick<FrameView, 'needsReview' | 'review' | 'qa'> }) {
  const status = reviewStatus(frame);
  if (status === 'needs-review') return <span className="badge badge-review" data-review="needed">Needs review</span>;
  if (status === 'approved') return <span className="badge badge-approved" data-review="approved">Approved</span>;
  return null;
}

/** The four scores in one compact list; a score past its threshold is marked, in words too. */
export function QaScoreList({ qa, shot, label }: { qa: FrameQa; shot?: Pick<ShotSummary, 'qaThresholds'>; label: string }) {
  return (
    <dl className="qa-scores" aria-label={label}>
      {scoreRows(qa, shot).map((r) => (
        <div key={r.score} className={r.flagged ? 'qa-past' : undefined} data-score={r.score} title={`${SCORE_INFO[r.score].what}; ${thresholdText(r.score, r.threshold)}`}>
          <dt>{SCORE_INFO[r.score].label}</dt>
          <dd>
            {formatScore(r.score, r.value)}
            {r.flagged && <span className="sr-only"> (past threshold)</span>}
          </dd>
        </div>
      ))}
    </dl>
  );
}

const JUDGEMENT: Record<'past' | 'within' | 'unknown', string> = { past: 'Past threshold', within: 'Within', unknown: '—' };

/** The scores against their thresholds, as a table (the review panel). */
export function QaScoreTable({ qa, shot, caption }: { qa: FrameQa | undefined; shot?: Pick<ShotSummary, 'qaThresholds'>; caption: string }) {
  return (
    <table className="table qa-table">
      <caption className="sr-only">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Score</th>
          <th scope="col" className="num">
            Value
          </th>
          <th scope="col">Threshold</th>
          <th scope="col">Judged</th>
        </tr>
      </thead>
      <tbody>
        {scoreRows(qa, shot).map((r) => (
          <tr key={r.score} data-score={r.score} className={r.flagged ? 'qa-past' : undefined}>
            <th scope="row" title={SCORE_INFO[r.score].what}>
              {SCORE_INFO[r.score].label}
            </th>
            <td className="num">
              {formatScore(r.score, r.value)}
              {r.score === 'flickerMean' && typeof qa?.flickerMeasuredShare === 'number' && (
                <div className="muted small">over {formatScore('flickerShare', qa.flickerMeasuredShare)} of the frame</div>
              )}
            </td>
            <td>{thresholdText(r.score, r.threshold)}</td>
            <td>{JUDGEMENT[r.judgement]}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
