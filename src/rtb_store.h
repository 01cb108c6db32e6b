/*
 * rtb_store: the SQL of the module, as labels of prepared statements. The
 * same text serves SQLite and PostgreSQL (apr_dbd turns %s/%d into each
 * driver's placeholders).
 */
#ifndef RTB_STORE_H
#define RTB_STORE_H

#define RTB_SQL_BOARD_GET "rtb_board_get"
#define RTB_SQL_BOARDS_ALL "rtb_boards_all"
#define RTB_SQL_BOARD_INS "rtb_board_ins"
#define RTB_SQL_BOARD_SEQ "rtb_board_seq"
#define RTB_SQL_BOARD_RENAME "rtb_board_rename"
#define RTB_SQL_BOARD_DEL "rtb_board_del"
#define RTB_SQL_LISTS_OF "rtb_lists_of"
#define RTB_SQL_LIST_GET "rtb_list_get"
#define RTB_SQL_LIST_INS "rtb_list_ins"
#define RTB_SQL_LIST_NEXT_POS "rtb_list_next_pos"
#define RTB_SQL_LIST_SHIFT "rtb_list_shift"
#define RTB_SQL_LIST_RENAME "rtb_list_rename"
#define RTB_SQL_LIST_DEL "rtb_list_del"
#define RTB_SQL_LIST_TASKS "rtb_list_tasks"
#define RTB_SQL_LIST_COUNT "rtb_list_count"
#define RTB_SQL_TASKS_OF "rtb_tasks_of"
#define RTB_SQL_TASK_GET "rtb_task_get"
#define RTB_SQL_TASK_BOARD "rtb_task_board"
#define RTB_SQL_TASK_INS "rtb_task_ins"
#define RTB_SQL_TASK_SHIFT "rtb_task_shift"
#define RTB_SQL_TASK_UPDATE "rtb_task_update"
#define RTB_SQL_TASK_MOVE "rtb_task_move"
#define RTB_SQL_TASK_DEL "rtb_task_del"
#define RTB_SQL_TASK_PARK "rtb_task_park"
#define RTB_SQL_TASK_DEL_LIST "rtb_task_del_list"
#define RTB_SQL_EVENT_INS "rtb_event_ins"
#define RTB_SQL_EVENTS_SINCE "rtb_events_since"
#define RTB_SQL_EVENT_MIN "rtb_event_min"
#define RTB_SQL_EVENT_PRUNE "rtb_event_prune"
#define RTB_SQL_IDEM_GET "rtb_idem_get"
#define RTB_SQL_IDEM_INS "rtb_idem_ins"

/* Column order of RTB_SQL_TASK_GET / RTB_SQL_TASKS_OF rows. */
enum {
    RTB_TC_ID,
    RTB_TC_LIST,
    RTB_TC_TITLE,
    RTB_TC_DESC,
    RTB_TC_ASSIGNEE,
    RTB_TC_POS,
    RTB_TC_VERSION,
    RTB_TC_CREATED,
    RTB_TC_UPDATED,
    RTB_TC_CREATED_BY,
    RTB_TC_UPDATED_BY,
    RTB_TC__N
};

#endif
