import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import type { FrameView } from '../api.ts';

const FPS = [4, 8, 12, 24] as const;

/**
 * Plays the colorized frames in order: play/pause, a frame slider, frames per second. Keys,
 * while the player has focus (or nothing else does): space plays or pauses, ← and → step.
 */
export function Flipbook({
  frames,
  frameCount,
  shown,
  onShown,
  onBrokenImage,
}: {
  /** Completed frames with an output URL, in frame order. */
  frames: readonly FrameView[];
  frameCount: number;
  /** Frame number to show (from the strip). */
  shown: number | undefined;
  onShown: (frame: number | undefined) => void;
  onBrokenImage: () => void;
}) {
  const [index, setIndex] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [fps, setFps] = useState<number>(12);
  const section = useRef<HTMLElement>(null);
  const n = frames.length;
  const i = n ? Math.min(index, n - 1) : 0;
  const current = frames[i];

  // A click on a strip thumbnail shows that frame here.
  useEffect(() => {
    if (shown === undefined) return;
    const at = frames.findIndex((f) => f.frame === shown);
    if (at >= 0) {
      setIndex(at);
      setPlaying(false);
      section.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      section.current?.focus({ preventScroll: true });
    }
    onShown(undefined);
  }, [shown, frames, onShown]);

  useEffect(() => {
    if (!playing || n < 2) return;
    const t = window.setInterval(() => setIndex((k) => (Math.min(k, n - 1) + 1) % n), 1000 / fps);
    return () => window.clearInterval(t);
  }, [playing, fps, n]);

  // Decode every frame ahead of playback so it does not stutter on first play.
  const urls = frames.map((f) => f.outputUrl).join('\n');
  useEffect(() => {
    for (const url of urls.split('\n')) {
      if (!url) continue;
      const img = new Image();
      img.src = url;
    }
  }, [urls]);

  const step = (d: number) => {
    if (!n) return;
    setPlaying(false);
    setIndex((k) => (Math.min(k, n - 1) + d + n) % n);
  };
  const toggle = () => n > 1 && setPlaying((p) => !p);

  const onKey = (e: KeyboardEvent<HTMLElement> | globalThis.KeyboardEvent) => {
    const target = e.target as HTMLElement;
    const tag = target.tagName;
    // Form controls keep their own keys (arrows move the slider, space presses a button).
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || (tag === 'BUTTON' && e.key === ' ')) return;
    if (e.key === ' ') toggle();
    else if (e.key === 'ArrowRight') step(1);
    else if (e.key === 'ArrowLeft') step(-1);
    else return;
    e.preventDefault();
  };
  const onKeyRef = useRef(onKey);
  onKeyRef.current = onKey;
  // With nothing focused, the page's keys drive the player.
  useEffect(() => {
    const h = (e: globalThis.KeyboardEvent) => {
      if (document.activeElement === document.body || document.activeElement === null) onKeyRef.current(e);
    };
    window.addEventListener('keydown', h);
    return () => window.removeEventListener('keydown', h);
  }, []);

  return (
    <section className="flipbook" aria-labelledby="flipbook-title" tabIndex={-1} ref={section} onKeyDown={onKey}>
      <div className="flipbook-head">
        <h2 id="flipbook-title">Flipbook</h2>
        <span className="muted">
          {n} of {frameCount} frames colorized
        </span>
      </div>
      {n === 0 ? (
        <div className="flipbook-empty">The flipbook fills in as frames finish.</div>
      ) : (
        <>
          <div className="flipbook-stage">
            <img src={current!.outputUrl} alt={`Frame ${current!.frame}, colour`} onError={onBrokenImage} />
            <span className="flipbook-counter" aria-live={playing ? 'off' : 'polite'}>
              Frame {current!.frame}
            </span>
          </div>
          <div className="flipbook-controls">
            <button type="button" className="button" onClick={() => step(-1)} aria-label="Previous frame" disabled={n < 2}>
              ←
            </button>
            <button type="button" className="button button-primary play" onClick={toggle} disabled={n < 2} aria-pressed={playing}>
              {playing ? 'Pause' : 'Play'}
            </button>
            <button type="button" className="button" onClick={() => step(1)} aria-label="Next frame" disabled={n < 2}>
              →
            </button>
            <label className="slider">
              <span className="sr-only">Frame</span>
              <input
                type="range"
                min={0}
                max={Math.max(0, n - 1)}
                step={1}
                value={i}
                onChange={(e) => {
                  setPlaying(false);
                  setIndex(Number(e.target.value));
                }}
                aria-valuetext={`Frame ${current!.frame}`}
                disabled={n < 2}
              />
            </label>
            <label className="fps">
              <span>fps</span>
              <select value={fps} onChange={(e) => setFps(Number(e.target.value))}>
                {FPS.map((f) => (
                  <option key={f} value={f}>
                    {f}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <p className="hint muted">Space plays or pauses, ← and → step through frames.</p>
        </>
      )}
    </section>
  );
}
