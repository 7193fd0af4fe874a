/** The reply of a memory command in a repository whose config switches memory off. */
export const MEMORY_OFF_REPLY =
  "Talos's memory is switched off in this repository (`memory.enabled` in `.github/talos.yml`).";
