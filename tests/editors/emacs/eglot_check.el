;;; eglot_check.el --- drive eglot against `dcopilot serve' in batch mode  -*- lexical-binding: t -*-
;; Loads the eglot snippet from editors/README.md ($DCOPILOT_SNIPPET), opens Python files in
;; $DCOPILOT_TEST_DIR and prints one "RESULT <name> <value>" line per check for the pytest side.
(require 'eglot)
(require 'cl-lib)
(load (getenv "DCOPILOT_SNIPPET") nil t)

(defun check-wait (pred secs)
  (let ((deadline (+ (float-time) secs)))
    (while (and (not (funcall pred)) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (funcall pred)))

(defun check-result (name value)
  (princ (format "RESULT %s %S\n" name value)))

(defun check-matching-labels ()
  "Completion candidates at the end of the buffer that survive Emacs' own filtering."
  (goto-char (point-max))
  (let* ((capf (eglot-completion-at-point))
         (prefix (buffer-substring-no-properties (nth 0 capf) (nth 1 capf)))
         (found (completion-all-completions prefix (nth 2 capf) nil (length prefix))))
    (when (consp found) (setcdr (last found) nil))
    (mapcar #'substring-no-properties found)))

(defun check-labels-once-ready ()
  "`check-matching-labels', asked again for up to 15 s: the server answers [] until its model is ready, and
eglot may ask before then (as a user would simply type on)."
  (let (found)
    (check-wait (lambda () (setq found (check-matching-labels))) 15)
    found))

(defun check-open (name text)
  (let ((file (expand-file-name name (getenv "DCOPILOT_TEST_DIR"))))
    (with-temp-file file (insert text))
    (find-file file)
    (python-mode)
    (unless (eglot-current-server)
      (apply #'eglot (eglot--guess-contact)))
    (check-wait #'eglot-current-server 30)))

(setq eglot-sync-connect 30
      print-escape-newlines t)  ; one RESULT per line
(check-open "after_space.py" "def foo(a, b):\n    x = ")
(check-result "server" (plist-get (eglot--server-info (eglot-current-server)) :name))
(check-result "after-space" (check-labels-once-ready))
(check-open "after_word.py" "def foo(a, b):\n    ret")
(check-result "after-word" (check-labels-once-ready))
(cl-letf (((symbol-function 'completing-read) (lambda (&rest _) "Rewrite with dcopilot"))
          ((symbol-function 'y-or-n-p) (lambda (&rest _) t))
          (last-nonmenu-event 13))  ; not a mouse event: pick through completing-read
  (eglot-code-actions (point-min) (save-excursion (goto-char (point-min)) (line-end-position)) nil t))
(check-wait (lambda () (string-prefix-p "def bar" (buffer-string))) 20)
(check-result "rewritten" (buffer-substring-no-properties (point-min) (point-max)))
(kill-emacs 0)
