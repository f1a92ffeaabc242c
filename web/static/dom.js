// The page's elements that every part of it may use.

export const $ = (s) => document.querySelector(s);

// setStatus shows a message on the status line ("" clears it): failures
// are told there, not only in the console.
export function setStatus(msg) { $("#status").textContent = msg; }
