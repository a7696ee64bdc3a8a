// Moving through the deck. Right, Page Down, N: next slide; Left, Page Up, P: previous;
// Space and Down scroll a long slide first, then move on (Up and Shift+Space go back);
// Home and End: first and last; F: full screen; C opens (or closes) the slide's folded code.
// The address remembers the slide (#7).
const slides = Array.from(document.querySelectorAll("section.slide"));
const MIN_ZOOM = 0.8;  // the most a slide is shrunk by (see fit)
let current = 0;

// Fitting a slide too long for the window, in this order: everything is shrunk (down to
// MIN_ZOOM); if that is not enough and the slide shows a figure, its folded code is folded
// away entirely (the figure is what the room reads; C or a click shows the code); then the
// figures are made smaller, down to FIGURE_VH of the window's height. The rest scrolls.
const FIGURE_VH = 50;

function fit(slide) {
  if (!slide) return;  // an empty deck
  const content = slide.firstElementChild;
  const images = Array.from(slide.querySelectorAll("img.figure"));
  const overflows = () => slide.scrollHeight - slide.clientHeight > 2;
  const zoomToFit = () => {
    content.style.zoom = 1;
    if (overflows()) {
      content.style.zoom = Math.max(slide.clientHeight / slide.scrollHeight * 0.98, MIN_ZOOM);
    }
  };
  slide.classList.remove("code-hidden");
  images.forEach((image) => { image.style.maxHeight = ""; });
  zoomToFit();
  if (!overflows() || !images.length) return;
  if (slide.dataset.opened !== "yes" && slide.querySelector("details.fold")) {
    slide.classList.add("code-hidden");
    zoomToFit();
  }
  for (let cap = 68; overflows() && cap >= FIGURE_VH; cap -= 3) {
    images.forEach((image) => { image.style.maxHeight = `${cap}vh`; });
  }
}

function show(index) {
  current = Math.min(Math.max(index, 0), slides.length - 1);
  slides.forEach((slide, i) => slide.classList.toggle("current", i === current));
  const slide = slides[current];
  fit(slide);
  slide.scrollTop = 0;
  document.querySelector(".bar").style.width = `${100 * (current + 1) / slides.length}%`;
  document.querySelector(".where").textContent = slide.dataset.section === DECK_TITLE
    ? DECK_TITLE : `${DECK_TITLE} · ${slide.dataset.section}`;
  document.querySelector(".number").textContent =
    `${slide.dataset.column}.${slide.dataset.row} · ${current + 1} / ${slides.length}`;
  history.replaceState(null, "", `#${current + 1}`);
}

function toggleFolds(slide) {
  const folds = Array.from(slide.querySelectorAll("details.fold"));
  const open = slide.classList.contains("code-hidden") || !folds.some((fold) => fold.open);
  slide.dataset.opened = open ? "yes" : "no";
  folds.forEach((fold) => { fold.open = open; });
  fit(slide);
}

function scrollOr(step) {
  const slide = slides[current];
  const room = step > 0 ? slide.scrollHeight - slide.clientHeight - slide.scrollTop
                        : slide.scrollTop;
  if (room > 2) slide.scrollBy({ top: step * slide.clientHeight * 0.8 });
  else show(current + step);
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const actions = {
    ArrowRight: () => show(current + 1), PageDown: () => show(current + 1),
    n: () => show(current + 1), ArrowLeft: () => show(current - 1),
    PageUp: () => show(current - 1), p: () => show(current - 1),
    ArrowDown: () => scrollOr(1), ArrowUp: () => scrollOr(-1),
    " ": () => scrollOr(event.shiftKey ? -1 : 1),
    Home: () => show(0), End: () => show(slides.length - 1),
    c: () => toggleFolds(slides[current]),
    f: () => document.fullscreenElement ? document.exitFullscreen()
                                        : document.documentElement.requestFullscreen(),
  };
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;  // F or f
  const action = actions[key];
  if (action) { event.preventDefault(); action(); }
});
let printing = false;
document.querySelectorAll("details.fold").forEach((fold) =>
  fold.addEventListener("toggle", () => {
    if (printing) return;
    const slide = fold.closest("section.slide");
    if (fold.open) slide.dataset.opened = "yes";
    if (slide === slides[current]) fit(slide);
  }));
window.addEventListener("resize", () => fit(slides[current]));
window.addEventListener("load", () => fit(slides[current]));
// Printed, every slide shows all its code at full size (the PDF has everything); afterwards
// the folds are as they were.
window.addEventListener("beforeprint", () => {
  printing = true;
  slides.forEach((slide) => {
    slide.classList.remove("code-hidden");
    slide.firstElementChild.style.zoom = 1;
    slide.querySelectorAll("img.figure").forEach((image) => { image.style.maxHeight = ""; });
  });
  document.querySelectorAll("details.fold").forEach((fold) => {
    fold.dataset.was = fold.open;
    fold.open = true;
  });
});
window.addEventListener("afterprint", () => {
  document.querySelectorAll("details.fold").forEach((fold) => {
    fold.open = fold.dataset.was === "true";
  });
  setTimeout(() => { printing = false; fit(slides[current]); });
});
if (slides.length) show((parseInt(location.hash.slice(1), 10) || 1) - 1);
