// Issue texts for benchmarks that search a memory: seeded, so every run remembers the same
// issues. A vocabulary of a few hundred words gives the local embedder and the keyword index
// what real trackers give them: texts that share some words with many others and most words
// with few. A list of a few dozen words would make every issue resemble every other.

const COMPONENTS = [
  "editor",
  "toolbar",
  "sidebar",
  "settings page",
  "login form",
  "dashboard",
  "search bar",
  "file browser",
  "terminal",
  "debugger",
  "plugin manager",
  "theme picker",
  "notification center",
  "command palette",
  "status bar",
  "minimap",
  "tab bar",
  "split view",
  "git panel",
  "diff viewer",
  "markdown preview",
  "image viewer",
  "PDF export",
  "CSV importer",
  "REST client",
  "GraphQL schema",
  "webhook handler",
  "scheduler",
  "cron job",
  "job queue",
  "cache layer",
  "session store",
  "auth service",
  "OAuth flow",
  "password reset",
  "billing page",
  "invoice generator",
  "report builder",
  "chart widget",
  "table view",
  "calendar",
  "timeline",
  "kanban board",
  "comment thread",
  "mention picker",
  "emoji picker",
  "file uploader",
  "avatar cropper",
  "profile page",
  "admin console",
  "audit log",
  "rate limiter",
  "API gateway",
  "CLI",
  "installer",
  "auto updater",
  "sync engine",
  "backup tool",
  "migration script",
  "translation loader",
];

const SYMPTOMS = [
  "crashes",
  "freezes",
  "hangs",
  "flickers",
  "lags badly",
  "leaks memory",
  "times out",
  "throws an exception",
  "shows a blank screen",
  "loses unsaved data",
  "duplicates entries",
  "ignores my settings",
  "renders incorrectly",
  "returns HTTP 500",
  "returns stale results",
  "floods the log with warnings",
  "spins forever",
  "drops the connection",
  "corrupts the output",
  "misaligns icons",
  "overflows its container",
  "truncates long text",
  "skips items",
  "submits twice",
  "resets the scroll position",
  "reports wrong totals",
  "fails silently",
  "deadlocks",
  "pegs the CPU",
  "rejects valid input",
];

const ACTIONS = [
  "saving",
  "opening",
  "closing",
  "resizing",
  "scrolling through",
  "dragging",
  "pasting",
  "uploading",
  "downloading",
  "exporting",
  "importing",
  "renaming",
  "deleting",
  "restoring",
  "syncing",
  "searching",
  "filtering",
  "sorting",
  "refreshing",
  "previewing",
  "switching between",
  "reconnecting with",
  "zooming into",
  "printing",
  "sharing",
  "archiving",
  "merging",
  "rebasing onto",
  "deploying",
  "validating",
];

const OBJECTS = [
  "large files",
  "empty folders",
  "nested lists",
  "very long lines",
  "unicode filenames",
  "emoji in titles",
  "symbolic links",
  "binary attachments",
  "wide tables",
  "animated images",
  "scanned PDFs",
  "spreadsheets",
  "zip archives",
  "JSON payloads",
  "YAML configs",
  "environment variables",
  "proxy settings",
  "SSH keys",
  "API tokens",
  "expired certificates",
  "time zones",
  "dates before 1970",
  "right-to-left text",
  "high-DPI displays",
  "multiple monitors",
  "the dark theme",
  "offline mode",
  "slow networks",
  "VPN connections",
  "shared workspaces",
  "read-only volumes",
  "network drives",
  "git submodules",
  "merge conflicts",
  "protected branches",
  "draft posts",
  "recurring events",
  "bulk selections",
  "custom fonts",
  "keyboard shortcuts",
];

const PLATFORMS = [
  "Windows 11",
  "Windows 10",
  "macOS Sonoma",
  "macOS Ventura",
  "Ubuntu 22.04",
  "Debian 12",
  "Fedora 39",
  "Arch Linux",
  "Android 14",
  "iOS 17",
  "Chrome",
  "Firefox",
  "Safari",
  "Edge",
  "Docker",
  "Kubernetes",
  "WSL2",
  "a Raspberry Pi",
  "ARM64 runners",
  "Node 20",
  "Python 3.12",
  "Java 21",
];

const FEATURES = [
  "a keyboard shortcut",
  "an undo button",
  "a progress indicator",
  "a confirmation dialog",
  "a retry option",
  "pagination",
  "bulk editing",
  "a CSV download",
  "a compact layout",
  "per-user permissions",
  "a high-contrast mode",
  "configurable timeouts",
  "a search filter",
  "an offline cache",
  "webhook signatures",
  "audit events",
  "a Spanish translation",
  "a German translation",
  "two-factor login",
  "a public API endpoint",
];

const EXPECTATIONS = [
  "it should finish within a second",
  "the previous version handled this fine",
  "nothing should be lost",
  "the order should be kept",
  "the totals should match the export",
  "a clear error message would help",
  "the layout should stay put",
  "the request should be retried",
  "the setting should be remembered",
  "the preview should update live",
];

const OBSERVATIONS = [
  "the console shows a null pointer exception",
  "the stack trace points at the renderer",
  "the network tab shows a pending request",
  "memory usage keeps climbing",
  "the process exits with code 137",
  "a spinner stays on screen",
  "the log says permission denied",
  "the first row is missing",
  "every second click is ignored",
  "the window goes white",
  "the fan spins up",
  "the progress bar jumps back",
  "a stale copy is shown",
  "the timestamps are off by an hour",
  "the server answers with a gateway timeout",
];

const FREQUENCY = [
  "every time",
  "about half the time",
  "only after a restart",
  "only on the first run",
  "intermittently",
  "since the last update",
  "with more than a thousand items",
  "under heavy load",
];

const REPORTERS = [
  "Our support team",
  "A customer",
  "I",
  "Two of our developers",
  "The nightly build job",
  "A new contributor",
];

/** Every word the texts draw from, lower-cased; about 400. */
export const ISSUE_VOCABULARY = new Set(
  [
    COMPONENTS,
    SYMPTOMS,
    ACTIONS,
    OBJECTS,
    PLATFORMS,
    FEATURES,
    EXPECTATIONS,
    OBSERVATIONS,
    FREQUENCY,
    REPORTERS,
  ]
    .flat()
    .flatMap((phrase) => phrase.toLowerCase().split(/[^\p{L}\p{N}-]+/u))
    .filter(Boolean),
);

export interface IssueText {
  title: string;
  body: string;
}

/**
 * The title and description of one made-up issue, the same for the same seed: a title (a bug or,
 * one time in five, a feature request) and two or three sentences.
 */
export function generateIssueText(seed: number): IssueText {
  const random = createRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const component = pick(COMPONENTS);
  const platform = pick(PLATFORMS);
  const object = pick(OBJECTS);
  if (random() < 0.2) {
    const feature = pick(FEATURES);
    return {
      title: `Add ${feature} to the ${component}`,
      body: `${pick(REPORTERS)} would like ${feature} when ${pick(ACTIONS)} ${object}. Today ${pick(OBSERVATIONS)} on ${platform}, and ${pick(EXPECTATIONS)}.`,
    };
  }
  const symptom = pick(SYMPTOMS);
  const action = pick(ACTIONS);
  const title =
    random() < 0.5
      ? `The ${component} ${symptom} when ${action} ${object}`
      : `${capitalize(component)} ${symptom} on ${platform}`;
  const sentences = [
    `${pick(REPORTERS)} can reproduce it ${pick(FREQUENCY)} on ${platform} when ${action} ${object}.`,
    `Expected: ${pick(EXPECTATIONS)}; instead ${pick(OBSERVATIONS)}.`,
  ];
  if (random() < 0.5)
    sentences.push(`It also happens with ${pick(OBJECTS)} in the ${pick(COMPONENTS)}.`);
  return { title, body: sentences.join(" ") };
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** mulberry32: a small seeded PRNG, so the texts do not depend on Math.random. */
function createRandom(seed: number): () => number {
  let state = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
