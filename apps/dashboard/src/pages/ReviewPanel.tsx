/**
 * Review of one frame: reference, sketch, output and the previous frame's output side by side,
 * its scores against their thresholds, its earlier takes, and the two decisions — approve the
 * take as it is, or render the frame again with another seed (the take so far is kept).
 */
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, ApiError, rerenderRequestSchema, TERMINAL, type FrameView, type ShotView } from '../api.ts';
import { ago, dateTime } from '../format.ts';
import type { FrameTake } from '../qa.ts';
import { ErrorNote, StateBadge } from '../ui.tsx';
import { QaScoreList, QaScoreTable, ReviewBadge } from './QaScores.tsx';

export function ReviewPanel({
  shot,
  frameNumber,
  frame,
  previous,
  now,
  takeFocus,
  onClose,
  onApproved,
  onRerendered,
  onBrokenImage,
}: {
  shot: ShotView;
  frameNumber: number;
  /** The frame as last read; undefined while it loads. */
  frame: FrameView | undefined;
  /** Frame k−1 as last read (none for frame 1). */
  previous: FrameView | undefined;
  now: number;
  /** Move the keyboard focus to the panel when the frame changes (not while stepping through the sparkline). */
  takeFocus: boolean;
  onClose: () => void;
  onApproved: (frame: FrameView) => void;
  onRerendered: (shot: ShotView) => void;
  onBrokenImage: () => void;
}) {
  const [busy, setBusy] = useState<'approve' | 'rerender' | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [seed, setSeed] = useState('');
  const heading = useRef<HTMLHeadingElement>(null);

  // A new frame to review: the panel comes into view, old errors go; chosen from a frame card, its
  // heading takes the focus (keyboard users land on it).
  const takeFocusRef = useRef(takeFocus);
  takeFocusRef.current = takeFocus;
  useEffect(() => {
    setError(null);
    setSeed('');
    heading.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    if (takeFocusRef.current) heading.current?.focus({ preventScroll: true });
  }, [frameNumber]);

  const approved = frame?.review?.state === 'approved';
  const canApprove = frame?.state === 'completed' && !approved;
  const approveHint = !frame ? undefined : frame.state !== 'completed' ? 'Only a completed frame can be approved' : approved ? 'This take is approved' : undefined;
  const shotBusy = !TERMINAL.includes(shot.state);
  const canRerender = (frame?.state === 'completed' || frame?.state === 'failed') && !shotBusy;
  const rerenderHint = shotBusy ? 'The shot is still rendering: re-render once it has finished' : frame && !canRerender ? 'Only a completed or failed frame can be rendered again' : undefined;

  const approve = async () => {
    setBusy('approve');
    setError(null);
    try {
      onApproved(await api.approve(shot.id, frameNumber));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const rerender = async (e: FormEvent) => {
    e.preventDefault();
    const text = seed.trim();
    const parsed = rerenderRequestSchema.safeParse(text === '' ? {} : { seed: /^\d+$/.test(text) ? Number(text) : NaN });
    if (!parsed.success) {
      const why = /^\d+$/.test(text) ? (parsed.error.issues[0]?.message ?? 'out of range') : 'not a whole number';
      setError(new ApiError(400, 'INVALID_SEED', `Seed “${text}”: ${why}. Give a whole number, 0 or more, or leave it empty for a random one.`));
      return;
    }
    setBusy('rerender');
    setError(null);
    try {
      onRerendered(await api.rerender(shot.id, frameNumber, parsed.data.seed));
      setSeed('');
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const takes = frame?.takes ?? [];
  return (
    <section className="review" aria-labelledby="review-title" data-frame={frameNumber}>
      <div className="review-head">
        <h3 id="review-title" tabIndex={-1} ref={heading}>
          Review frame {frameNumber}
          {frame && (
            <span className="mono muted frame-file" title={frame.fileName}>
              {' '}
              {frame.fileName}
            </span>
          )}
        </h3>
        {frame && <StateBadge state={frame.state} />}
        {frame && <ReviewBadge frame={frame} />}
        <button type="button" className="button review-close" onClick={onClose}>
          Close review
        </button>
      </div>
      {!frame ? (
        <p className="muted">Loading frame {frameNumber}…</p>
      ) : (
        <>
          <div className="review-images">
            <Picture caption="Reference" src={api.referenceUrl(shot.id)} alt={`Shot ${shot.name}, colour reference`} kind="reference" onError={onBrokenImage} />
            <Picture caption="Sketch" src={frame.inputUrl} alt={`Frame ${frameNumber}, sketch`} kind="review-sketch" empty="no sketch" onError={onBrokenImage} />
            <Picture
              caption={`Output (seed ${frame.seed})`}
              src={frame.state === 'completed' ? frame.outputUrl : undefined}
              alt={`Frame ${frameNumber}, colour`}
              kind="review-output"
              empty={frame.state === 'completed' ? 'loading…' : frame.state}
              onError={onBrokenImage}
            />
            <Picture
              caption={frameNumber > 1 ? `Frame ${frameNumber - 1}` : 'Previous frame'}
              src={previous?.state === 'completed' ? previous.outputUrl : undefined}
              alt={`Frame ${frameNumber - 1}, colour`}
              kind="review-previous"
              empty={frameNumber === 1 ? 'none: the first frame' : previous ? previous.state : 'not loaded'}
              onError={onBrokenImage}
            />
          </div>

          <div className="review-body">
            <div>
              <h4>Scores</h4>
              {frame.qa ? (
                <QaScoreTable qa={frame.qa} shot={shot} caption={`Shot QA of frame ${frameNumber}`} />
              ) : (
                <p className="muted">{frame.state === 'completed' ? 'Not scored.' : 'Scores come when the frame has completed.'}</p>
              )}
              {frame.review?.state === 'approved' && (
                <p className="small">
                  Approved{' '}
                  <time dateTime={frame.review.at} title={dateTime(frame.review.at)}>
                    {ago(frame.review.at, now)}
                  </time>
                  {frame.review.by && <> by <span className="mono">{frame.review.by}</span></>}.
                </p>
              )}
            </div>

            <div className="review-actions">
              <h4>Decide</h4>
              <button type="button" className="button button-primary" disabled={!canApprove || busy !== null} title={approveHint} onClick={() => void approve()}>
                {busy === 'approve' ? 'Approving…' : approved ? 'Approved' : 'Approve'}
              </button>
              <form className="rerender" onSubmit={(e) => void rerender(e)}>
                <label>
                  <span>Seed</span>
                  <input type="text" inputMode="numeric" value={seed} onChange={(e) => setSeed(e.target.value)} placeholder="random" size={12} aria-describedby="seed-hint" />
                </label>
                <button type="submit" className="button" disabled={!canRerender || busy !== null} title={rerenderHint}>
                  {busy === 'rerender' ? 'Re-rendering…' : 'Re-render with another seed'}
                </button>
                <p id="seed-hint" className="muted small">
                  Empty: a new random seed. The current take stays in the frame’s takes.
                </p>
              </form>
              {rerenderHint && frame && <p className="muted small">{rerenderHint}.</p>}
              <ErrorNote error={error} title="The farm refused:" />
            </div>
          </div>

          {takes.length > 0 && (
            <div className="takes-section">
              <h4>Earlier takes ({takes.length})</h4>
              <ol className="takes">
                {[...takes].reverse().map((t) => (
                  <Take key={`${t.round}-${t.replacedAt}`} take={t} frame={frameNumber} shot={shot} now={now} onBrokenImage={onBrokenImage} />
                ))}
              </ol>
            </div>
          )}
        </>
      )}
    </section>
  );
}

function Picture({ caption, src, alt, kind, empty = 'none', onError }: { caption: string; src: string | undefined; alt: string; kind: string; empty?: string; onError: () => void }) {
  return (
    <figure>
      {src ? <img src={src} alt={alt} data-kind={kind} onError={onError} /> : <div className="thumb-empty">{empty}</div>}
      <figcaption>{caption}</figcaption>
    </figure>
  );
}

function Take({ take: t, frame, shot, now, onBrokenImage }: { take: FrameTake; frame: number; shot: ShotView; now: number; onBrokenImage: () => void }) {
  const src = t.previewUrl ?? t.outputUrl;
  return (
    <li className="take" data-round={t.round}>
      {src ? <img src={src} alt={`Frame ${frame}, earlier take (seed ${t.seed})`} loading="lazy" data-kind="take" onError={onBrokenImage} /> : <div className="thumb-empty">no image</div>}
      <div>
        <p className="take-facts">
          <strong>Seed {t.seed}</strong>
          <span className="muted">
            round {t.round} · replaced{' '}
            <time dateTime={t.replacedAt} title={dateTime(t.replacedAt)}>
              {ago(t.replacedAt, now)}
            </time>
          </span>
          {t.review?.state === 'approved' && <span className="badge badge-approved">Approved</span>}
        </p>
        {t.qa ? <QaScoreList qa={t.qa} shot={shot} label={`Scores of the take with seed ${t.seed}`} /> : <p className="muted small">Not scored.</p>}
      </div>
    </li>
  );
}
