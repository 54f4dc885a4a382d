package testserver

import (
	"strings"
	"time"

	"github.com/gotd/td/tg"
)

// SpamBot reply texts, verbatim from the real bot (typographic apostrophe
// U+2019 included), as recorded in the project's reference notes. The date
// format is "2 Jan 2006, 15:04 MST" in both languages.
const (
	spamFreeEN = "Good news, no limits are currently applied to your account. You’re free as a bird!"
	spamFreeRU = "Ваш аккаунт свободен от каких-либо ограничений."

	spamLimitedEN = "I’m afraid some Telegram users found your messages annoying and forwarded them to our team of moderators for inspection. " +
		"The moderators have confirmed the report and your account is now limited until {date}.\n\n" +
		"While the account is limited, you will not be able to do certain things on Telegram, like writing to strangers who haven’t contacted you first " +
		"or adding them to groups and channels. Your account will be automatically released on {date}. " +
		"Please note that if you repeat what got you limited and users report you again, the limitations will last longer next time. " +
		"Subscribers of Telegram Premium have reduced times for initial limitations."
	spamLimitedRU = "К сожалению, некоторые пользователи Telegram пожаловались на Ваши сообщения, и модераторы подтвердили жалобы. " +
		"Ваш аккаунт временно ограничен: Вы не можете писать тем, кто не сохранил Ваш номер в список контактов, и добавлять их в группы и каналы. " +
		"Ограничения будут автоматически сняты {date} (по московскому времени — на три часа позже)."

	spamPermanentEN = "I’m afraid some Telegram users found your messages annoying and forwarded them to our team of moderators for inspection. " +
		"The moderators have confirmed the report. Unfortunately, your account is now limited. " +
		"While the account is limited, you will not be able to send messages to people who do not have your number in their phone contacts " +
		"or add them to groups and channels. Of course, when people contact you first, you can always reply to them."
	spamPermanentRU = "К сожалению, некоторые пользователи Telegram пожаловались на Ваши сообщения, и модераторы подтвердили жалобы. " +
		"Теперь Ваш аккаунт ограничен: Вы не можете писать тем, кто не сохранил Ваш номер в список контактов, и добавлять их в группы и каналы."

	spamFrozenEN = "Your account was blocked for violations of the Telegram Terms of Service based on user reports confirmed by our moderators."
	spamFrozenRU = "Ваш аккаунт заблокирован за нарушение Условий использования Telegram на основании жалоб пользователей, подтверждённых модераторами."

	spamButtonsHint = "Please use buttons to communicate with me."
)

// SpamBotDateLayout is how SpamBot writes dates.
const SpamBotDateLayout = "2 Jan 2006, 15:04 MST"

var (
	spamFreeButtonsEN    = []string{"Cool, thanks", "But I can’t message non-contacts!"}
	spamFreeButtonsRU    = []string{"Хорошо, спасибо", "Но я не могу писать неконтактам"}
	spamLimitedButtonsEN = []string{"OK", "Why was I limited?", "I was wrong, please release me", "This is a mistake"}
	spamLimitedButtonsRU = []string{"Хорошо", "За что меня ограничили?", "Я ошибся, снимите ограничения", "Это ошибка"}
	spamFrozenButtonsEN  = []string{"This is a mistake"}
	spamFrozenButtonsRU  = []string{"Это ошибка"}
)

// spamBotReply returns the text and buttons SpamBot answers /start with,
// for the account's state and language.
func (s *Server) spamBotReply(a *account, now time.Time, text string) (string, []string) {
	ru := strings.HasPrefix(strings.ToLower(a.lang), "ru")
	if !strings.HasPrefix(strings.TrimSpace(text), "/start") {
		return spamButtonsHint, nil
	}
	p := &a.policy
	pick := func(en, ru_ string, enB, ruB []string) (string, []string) {
		if ru {
			return ru_, ruB
		}
		return en, enB
	}
	switch {
	case p.frozen():
		return pick(spamFrozenEN, spamFrozenRU, spamFrozenButtonsEN, spamFrozenButtonsRU)
	case p.permanent:
		return pick(spamPermanentEN, spamPermanentRU, spamLimitedButtonsEN, spamLimitedButtonsRU)
	case p.limited(now):
		t, b := pick(spamLimitedEN, spamLimitedRU, spamLimitedButtonsEN, spamLimitedButtonsRU)
		return strings.ReplaceAll(t, "{date}", p.limitUntil.UTC().Format(SpamBotDateLayout)), b
	}
	return pick(spamFreeEN, spamFreeRU, spamFreeButtonsEN, spamFreeButtonsRU)
}

// keyboard renders buttons two per row, as SpamBot lays them out.
func keyboard(buttons []string) tg.ReplyMarkupClass {
	if len(buttons) == 0 {
		return nil
	}
	var rows []tg.KeyboardButtonRow
	for i := 0; i < len(buttons); i += 2 {
		row := tg.KeyboardButtonRow{}
		for _, b := range buttons[i:min(i+2, len(buttons))] {
			row.Buttons = append(row.Buttons, &tg.KeyboardButton{Text: b})
		}
		rows = append(rows, row)
	}
	return &tg.ReplyKeyboardMarkup{Resize: true, Rows: rows}
}
