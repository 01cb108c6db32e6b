// Puts someone else's change to the board into words, for the screen-reader announcer.

/**
 * ev: the board event; before: the task or list as it was before it (for deletions);
 * who: the actor's display name; listName(id): a list's name, or null.
 * Returns the sentence, or '' for an event not worth announcing.
 */
export function describeEvent(ev, before, who, listName) {
  const d = ev.data || {};
  const title = (t) => `“${(t && t.title) || 'a task'}”`;
  const list = (id) => listName(id) || 'another list';
  switch (ev.type) {
    case 'task_created': return `${who} added ${title(d.task)} to ${list(d.task && d.task.listId)}`;
    case 'task_updated': return `${who} edited ${title(d.task)}`;
    case 'task_moved': return `${who} moved ${title(d.task)} to ${list(d.task && d.task.listId)}`;
    case 'task_deleted': return `${who} deleted ${title(before)}`;
    case 'list_created': return `${who} added the list “${d.list ? d.list.name : ''}”`;
    case 'list_updated': return `${who} renamed a list to “${d.list ? d.list.name : ''}”`;
    case 'list_deleted': return `${who} deleted the list “${before ? before.name : ''}”`;
    case 'board_updated': return `${who} renamed the board to “${d.board ? d.board.name : ''}”`;
    default: return '';
  }
}
